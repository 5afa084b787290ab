"""``fieldkit init``, ``fieldkit config show`` and ``fieldkit demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, err, table

config_app = typer.Typer(help="Show the merged settings and where each value came from.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def init(
    directory: Path = typer.Argument(Path("."), help="Where to create the workspace."),
    catalogue_url: Optional[str] = typer.Option(
        None, help="SQLAlchemy URL (default: SQLite in the workspace); an existing PostgreSQL catalogue is joined."),
    archive: Optional[str] = typer.Option(None, "--archive", help="Archive root: a folder or a URL such as "
                                          "s3://bucket/archive (default: archive/ in the workspace)."),
    stores: Optional[str] = typer.Option(None, "--stores", help="Stores root: a folder or a URL (default: stores/)."),
    exports: Optional[str] = typer.Option(None, "--exports", help="Exports root: a folder or a URL (default: exports/)."),
    storage_option: Optional[list[str]] = typer.Option(
        None, "--storage-option", metavar="KEY=VALUE",
        help="An fsspec option of the URL roots, written to [storage] options (repeatable), e.g. "
             "endpoint_url=http://127.0.0.1:9000 or key='${AWS_ACCESS_KEY_ID}'; a.b=V sets a nested option."),
    json_out: bool = JSON,
) -> None:
    """Create a workspace: fieldkit.toml, catalogue, archive/, stores/, exports/ (folders or URLs)."""
    from fieldkit.config.settings import redact_url
    from fieldkit.workspace import init_workspace

    roots = {k: v for k, v in (("archive_root", archive), ("stores_root", stores), ("exports_root", exports)) if v}
    options = _storage_options(storage_option or [])
    with init_workspace(directory, catalogue_url=catalogue_url, roots=roots, storage_options=options) as ws:
        doc = {"workspace": str(ws.root), "catalogue_url": redact_url(ws.paths.catalogue_url),
               # each root's folder or URL (never a credential: a URL root carries none)
               "archive": ws.roots.archive.uri(), "stores": ws.roots.stores.uri(), "exports": ws.roots.exports.uri()}
        if ws.shared is not None:
            doc["catalogue"] = ws.shared.to_dict()
    if json_out:
        emit_json(doc)
        return
    err.print(f"created fieldkit workspace at [bold]{doc['workspace']}[/bold]")
    shared = doc.get("catalogue")
    if shared is not None:
        n = f"{shared['recordings']} recording{'s' if shared['recordings'] != 1 else ''}"
        said = {"created": "created catalogue at", "joined": "joined catalogue at",
                "migrated": f"joined catalogue (migrated from {shared['previous_revision']}) at"}[shared["state"]]
        err.print(f"{said} {doc['catalogue_url']}, {n}")


def _storage_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as fsspec options: ``a.b=V`` nests; numbers and true/false are typed."""
    import tomllib

    from fieldkit.errors import ConfigError

    options: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--storage-option {pair!r} is not KEY=VALUE.",
                             hint="For example --storage-option endpoint_url=http://127.0.0.1:9000")
        try:
            value = tomllib.loads(f"v = {raw}")["v"] if raw and not raw.startswith("$") else raw
        except tomllib.TOMLDecodeError:
            value = raw  # a plain string (URLs, names, ${VAR} references)
        *parents, leaf = key.strip().split(".")
        node = options
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return options


@config_app.command("show")
def show(ctx: typer.Context, json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Merged settings (fieldkit.toml < FIELDKIT_* env < flags) with the source of every value."""
    from fieldkit.config.settings import find_workspace, flatten, load_settings, public_settings

    root = find_workspace(state(ctx).workspace)
    loaded = load_settings(root)
    values = public_settings(loaded.settings)  # secrets masked, never printed
    doc = {"workspace": str(root), "settings": values, "sources": dict(loaded.sources)}
    if json_out:
        emit_json(doc)
        return
    flat = flatten(values)
    rows = [{"key": k, "value": v, "source": loaded.sources.get(k, "default")} for k, v in flat.items()]
    table(f"settings of {root}", rows, ["key", "value", "source"], fmt)


def demo(
    directory: Path = typer.Argument(Path("fieldkit-demo"), help="Where to build the demo workspace."),
    json_out: bool = JSON,
) -> None:
    """Run the whole job end to end on the bundled sample card, in a fresh demo workspace."""
    from fieldkit.cli.demo import run_demo

    report = run_demo(directory, progress=not json_out)
    if json_out:
        emit_json(report)
        return
    for stage in report["stages"]:
        err.print(f"[green]✓[/green] {stage['name']}: {stage['summary']}")
    err.print(f"demo workspace: [bold]{report['workspace']}[/bold]")
    err.print(f"browse it (read-only, http://127.0.0.1:8000/): {report['serve']}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(config_app, name="config")
    app.command("demo")(demo)
