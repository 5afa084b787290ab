"""``fieldkit ingest`` and ``fieldkit verify``."""

from __future__ import annotations

import signal
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, err, human, human_size, table

if TYPE_CHECKING:
    from fieldkit.ingest.outcomes import IngestReport

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")


@contextmanager
def _graceful_stop():
    """SIGINT/SIGTERM ask the ingest to stop at the next safe point (between batches)."""
    requested = {"stop": False}

    def handler(signum, _frame):
        requested["stop"] = True
        err.print("[yellow]stopping after the current batch (safe point)…[/yellow]")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: requested["stop"]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def ingest(
    ctx: typer.Context,
    card_dir: Path = typer.Argument(..., help="The card's mount point, a copy of its folder tree, or a "
                                    "dump of it (.zip, .tar, .tar.gz)."),
    site: str = typer.Option(..., "--site", help="Site name (created if new)."),
    deployment: str = typer.Option(..., "--deployment", help="Deployment name at the site (created if new)."),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="Recorder clock zone: a fixed offset such as "
                                           "+10:00 (recommended: recorders ignore DST) or an IANA name."),
    device: Optional[str] = typer.Option(None, "--device", help="Device serial for files that carry none."),
    card_id: Optional[str] = typer.Option(None, "--card-id", help="Name this card (default: filesystem UUID, else its path)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be ingested; write nothing."),
    break_lock: bool = typer.Option(False, "--break-lock", help="Clear a stale ingest lock (its process is dead)."),
    json_out: bool = JSON,
    fmt: Optional[TableFormat] = FORMAT,
) -> None:
    """Copy every file of a card into the archive, verified, and catalogue it."""
    from fieldkit.cli.progress import FileProgress
    from fieldkit.ingest.dumps import ingest_dump, is_dump, plan_dump
    from fieldkit.ingest.service import IngestRequest, ingest_card, plan_ingest

    ws = state(ctx).open()
    request = IngestRequest(card_dir, site, deployment, timezone, device, card_id, break_lock)
    dump = is_dump(card_dir)  # G1: a .zip/.tar/.tar.gz card dump is ingested as the card
    if dry_run:
        plan = plan_dump(ws, request) if dump else plan_ingest(ws, request)
        emit_json(plan) if json_out else err.print(
            f"would ingest {plan['to_copy']} files ({human_size(plan['bytes_to_copy'])}) from {plan['card_root']}; "
            f"{len(plan['ignored'])} ignored; enough space: {human(plan['enough_space'])}")
        for rejected in plan.get("rejected", []) if not json_out else ():
            err.print(f"[yellow]rejected[/yellow] {rejected['name']!r} ({rejected['reason']}): "
                      f"{rejected['message']}")
        return
    with _graceful_stop() as should_stop:
        run = ingest_dump if dump else ingest_card
        report = run(ws, request, progress=FileProgress("copy", enabled=not json_out), should_stop=should_stop)
    emit_json(report.to_dict()) if json_out else _render(report, fmt)
    raise typer.Exit(report.exit_code)


def _render(report: IngestReport, fmt: Optional[TableFormat]) -> None:
    if report.repeat_of is not None:
        _render_repeat(report)
    else:
        for message in report.messages:
            err.print(message)
        _render_session(report, fmt)
    err.print(_erase_verdict(report))


def _render_repeat(report: IngestReport) -> None:
    """A re-ingest: one line, not the session table again (the first ingest listed every problem)."""
    err.print(report.messages[0])
    if report.problems:
        kinds = Counter(f.status or f.state for f in report.problems)
        err.print(f"of these, {' and '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}, as listed when first "
                  f"archived ('fieldkit catalog recordings --status {min(kinds)}' shows them again).")
    for message in report.messages[1:]:
        err.print(message)


def _render_session(report: IngestReport, fmt: Optional[TableFormat]) -> None:
    c = report.counts
    table(f"ingest of {report.card} → {report.site}/{report.deployment} (session {report.session_id})",
          [{"files": c["files"], "verified": c["verified"], "duplicate": c["duplicate"], "ignored": c["ignored"],
            "failed": c["failed"], "ok": c["ok"], "truncated": c["truncated"], "quarantined": c["quarantined"]}],
          ["files", "verified", "duplicate", "ignored", "failed", "ok", "truncated", "quarantined"], fmt)
    problems = [{"file": f.path, "state": f.state, "status": f.status, "reason": f.reason, "message": f.message}
                for f in report.problems]
    if problems:
        table("needs attention", problems, ["file", "state", "status", "reason", "message"], fmt)


def _erase_verdict(report: IngestReport) -> str:
    """The last line: whether the card may be erased, and why (never a bare 'None')."""
    if report.safe_to_erase and report.repeat_of is not None:
        return ("[bold green]✓ safe to erase this card[/bold green]: every file was verified in the archive "
                "when first copied, and every copy is still there.")
    if report.safe_to_erase:
        proof = f" (manifest {report.manifest})" if report.manifest else ""
        return f"[bold green]✓ safe to erase this card[/bold green]: every file is verified in the archive{proof}."
    why = ("some files failed to copy; run again." if report.counts["failed"]
           else "the ingest is not complete; run again." if report.state != "complete"
           else "some archived copies are missing or changed; run 'fieldkit verify'.")
    return "[bold red]✗ do NOT erase this card[/bold red]: " + why


def verify(ctx: typer.Context, json_out: bool = JSON) -> None:
    """Re-hash every archived file against the catalogue and the manifests; record the result."""
    from fieldkit.cli.progress import FileProgress
    from fieldkit.ingest.verify import verify_archive

    ws = state(ctx).open()
    report = verify_archive(ws, progress=FileProgress("verify", enabled=not json_out))
    if json_out:
        emit_json(report.to_dict())
    else:
        err.print(f"checked {report.checked} archived files: {report.ok} match"
                  + (f"; manifest {report.manifest}" if report.manifest else ""))
        for m in report.mismatched:
            expected = ", ".join(f"{v} ({k})" for k, v in m["expected"].items())  # a dict, not its repr
            err.print(f"[red]MISMATCH[/red] {m['archive_path']}: found {m['found']}, expected {expected}")
        for p in report.missing:
            err.print(f"[red]MISSING[/red] {p}")
        for p in report.chain_problems:
            err.print(f"[red]MANIFEST CHAIN[/red] {p}")
        for p in report.uncatalogued:
            err.print(f"[yellow]not in the catalogue[/yellow] {p}")
        if not report.passed:
            err.print("Restore the files listed from the card or a backup copy; the archive was not changed.")
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("verify")(verify)
