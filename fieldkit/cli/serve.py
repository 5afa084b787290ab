"""``fieldkit serve``: the catalogue in a browser, read-only."""

from __future__ import annotations

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import emit_json, err


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; any but a loopback one "
                             "needs a token (serve.token, or --new-token)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    new_token: bool = typer.Option(False, "--new-token", help="Generate a token, print it, and require it."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document (the address) on stdout, "
                                  "then serve."),
) -> None:
    """Browse the catalogue in a web browser: overview, recordings, spectrograms, sound, runs, datasets."""
    from fieldkit.web.server import plan_serve, run

    plan = plan_serve(state(ctx).open(), host, port, generate_token=new_token)
    if json_out:
        emit_json(plan.to_dict())
    else:
        err.print(f"serving {plan.workspace.root} (read-only) at [bold]{plan.to_dict()['url']}[/bold]")
        if plan.token and not plan.token_generated:
            err.print("  the token is serve.token of the settings: add ?token=… to the address once")
        err.print("  press Ctrl-C to stop")
    run(plan)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
