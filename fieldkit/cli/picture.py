"""``fieldkit picture ldfc | heatmap``: pictures of a deployment's acoustic indices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import emit_json, err

app = typer.Typer(help="Pictures of a deployment's acoustic indices (false-colour spectrograms, heat maps).",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
DEPLOYMENT = typer.Option(..., "--deployment", help="Deployment NAME (or SITE/NAME when names repeat).")
RUN = typer.Option(None, "--run", min=1, help="Run id (default: the newest complete run with the indices).")
#: fieldkit.config.params.INDICES, written out so that --help does not import pydantic's models;
#: a test keeps the two equal.
INDEX_NAMES = ("aci", "adi", "aei", "bi", "ndsi", "ht", "hf", "h")


def _day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; expected YYYY-MM-DD (local time).") from None


@app.command("ldfc")
def ldfc(
    ctx: typer.Context,
    deployment: str = DEPLOYMENT,
    day: str | None = typer.Option(None, "--day", help="One local day YYYY-MM-DD, 24 h wide (default: every "
                                   "minute with data)."),
    run: int | None = RUN,
    step: int = typer.Option(60, "--step", min=1, help="Seconds per pixel column (Towsey: 60)."),
    out: Path | None = typer.Option(None, "--out", help="Output PNG (default: exports/pictures/ldfc-...png)."),
    json_out: bool = JSON,
) -> None:
    """Long-duration false-colour spectrogram: R = ACI, G = ENT, B = EVN per frequency bin per minute."""
    from fieldkit.listen.soundscape import ldfc_picture

    result = ldfc_picture(state(ctx).open(), deployment, day=_day(day), run_id=run, out=out, step_s=step)
    if json_out:
        emit_json(result)
        return
    err.print(f"{result['deployment']} (run {result['run_id']}): {result['columns']} columns of {step} s "
              f"({result['columns_with_data']} with data, {result['first']} to {result['last']} local), "
              f"{result['bins']} bins to {result['top_khz']:g} kHz")
    err.print(f"  {result['png']} ({result['width_px']} x {result['height_px']} px)")


@app.command("heatmap")
def heatmap(
    ctx: typer.Context,
    deployment: str = DEPLOYMENT,
    index: str = typer.Option("aci", "--index", help=f"Per-clip index: {' | '.join(INDEX_NAMES)}."),
    run: int | None = RUN,
    out: Path | None = typer.Option(None, "--out", help="Output PNG (default: exports/pictures/heatmap-...png)."),
    json_out: bool = JSON,
) -> None:
    """24 h heat map of an acoustic index: its mean per clip by local hour and day."""
    from fieldkit.listen.soundscape import index_heatmap

    result = index_heatmap(state(ctx).open(), deployment, index, run_id=run, out=out)
    if json_out:
        emit_json(result)
        return
    err.print(f"{result['deployment']} (run {result['run_id']}): {index} over {len(result['days'])} days, "
              f"{result['hours_with_data']} hours with clips, from {result['min']:.4g} to {result['max']:.4g}")
    err.print(f"  {result['png']} ({result['width_px']} x {result['height_px']} px)")
