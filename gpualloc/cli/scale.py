"""Synthetic instances, benchmark tiers and trace replay."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import models
from .app import (
    app,
    fail,
    input_errors,
    out,
)


# -- synthetic instances, benchmark tiers, trace replay --------------------------------------
def bench_items(targets: list[str], minimize: bool, tiers: list[str],
                 philly: Path | None) -> list[Any]:
    """Bench targets from files, generated tiers and the Philly replay."""
    from ..analysis.bench import bench_targets
    from ..sources.generate import TIERS, tier_instance

    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        fail(f"unknown tier(s) {', '.join(map(repr, unknown))}; choose from "
             f"{', '.join(TIERS)}")
    if not targets and not tiers and philly is None:
        fail("nothing to benchmark: give instance/GAP files, --tier or --philly")
    with input_errors():
        items = bench_targets(targets, minimize=minimize)
        for name in tiers:
            inst = tier_instance(name)
            items.append((f"{name}:{inst.name}", inst, None))
        if philly is not None:
            from ..sources.philly import philly_instance

            inst = philly_instance(philly)
            items.append((inst.name, inst, None))
    return items


def _seconds(text: str, option: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} must be comma-separated seconds, not {text!r}")
    if any(not v > 0 for v in values):
        fail(f"{option} must be positive seconds")
    return values


def process_bench(items: list[Any], targets: list[str], backends: list[str], limits: str,
                  signal_at: str, csv: Path | None) -> None:
    """``bench --limits-check/--interrupts``: whole ``gpualloc solve`` processes per target
    (generated tiers are written to a temporary JSON file first)."""
    import csv as csv_module
    import io
    import tempfile
    from dataclasses import asdict, fields

    from rich.table import Table

    from ..analysis.bench import ProcessRow, process_checks
    from ..models import atomic_write_text
    from .app import err, fmt

    asked, at = _seconds(limits, "--limits"), _seconds(signal_at, "--signal-at")
    files = {str(Path(t)) for t in targets}
    table = Table(title="Time limits and interrupts (whole process, launch to exit)",
                  title_justify="left")
    for col in ("instance", "backend", "kind", "asked s", "wall s", "start-up s",
                "after signal s", "exit", "status", "objective", "valid", "target met"):
        table.add_column(col, justify="left" if col in ("instance", "backend", "kind",
                                                        "status") else "right")
    rows: list[ProcessRow] = []

    def row_done(r: ProcessRow) -> None:
        table.add_row(r.instance, r.backend, r.kind, fmt(r.asked, 0), fmt(r.wall),
                      fmt(r.startup), fmt(r.after_signal), str(r.exit_code), r.status or "-",
                      fmt(r.objective),
                      "-" if r.valid is None else ("yes" if r.valid else "NO"),
                      "yes" if r.ok else "NO")
        err.print(f"  {r.instance} {r.backend} {r.kind} {r.asked:g}: wall {r.wall:.2f} s"
                  + ("" if r.after_signal is None else f", {r.after_signal:.2f} s after SIGINT")
                  + f", exit {r.exit_code}")
        rows.append(r)

    with tempfile.TemporaryDirectory(prefix="gpualloc-bench-") as folder:
        for label, inst, problem in items:
            if problem is not None:
                continue  # GAP problems have no instance file for `solve`
            path = next((f for f in files if label in (f, Path(f).stem, inst.name)), None)
            if path is None:
                path = str(Path(folder) / f"{label.replace(':', '_')}.json")
                models.save_instance(inst, path)
            for name in backends:
                process_checks(label, path, inst, name, asked, at, row_done)
    out.print(table)
    if csv is not None:
        buf = io.StringIO()
        writer = csv_module.DictWriter(buf, fieldnames=[f.name for f in fields(ProcessRow)])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
        atomic_write_text(csv, buf.getvalue())
        out.print(f"CSV written to {csv}")


@app.command()
def generate(
    clusters: Annotated[int, typer.Option(help="Clusters.")] = 8,
    startups: Annotated[int, typer.Option(help="Start-ups.")] = 12,
    jobs: Annotated[int, typer.Option(help="Jobs.")] = 400,
    periods: Annotated[int, typer.Option(help="Weekly periods.")] = 26,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same instance).")] = 0,
    tier: Annotated[str | None, typer.Option(
        help="A benchmark tier (medium, large, large-wide, huge); overrides the sizes, seed "
             "and windows.")] = None,
    windows: Annotated[str, typer.Option(
        help="Job windows: narrow (deadlines soon after the earliest end) or wide (release in "
             "the first quarter, no deadline before the horizon: ~250 starts per option).")]
    = "narrow",
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Write the instance here (YAML, or JSON for .json); default stdout.")]
    = None,
) -> None:
    """Generate a realistic synthetic instance (job shapes fitted from real GPU traces)."""
    from ..sources.generate import TIERS, WINDOWS, tier_instance
    from ..sources.generate import generate as make

    if windows not in WINDOWS:
        fail(f"--windows must be one of {', '.join(WINDOWS)}, not {windows!r}")
    if tier is not None:
        if tier not in TIERS:
            fail(f"unknown tier {tier!r}; choose from {', '.join(TIERS)}")
        inst = tier_instance(tier)
    else:
        try:
            inst = make(clusters=clusters, startups=startups, jobs=jobs, periods=periods,
                        seed=seed, windows=windows)
        except ValueError as e:
            fail(str(e))
    if out_path is None:
        from ..models.io import dump_model

        sys.stdout.write(dump_model(inst, "instance.yaml"))
        return
    models.save_instance(inst, out_path)
    size = f"{len(inst.clusters)} clusters, {len(inst.startups)} start-ups, " \
           f"{len(inst.jobs)} jobs, {inst.horizon.periods} periods"
    out.print(f"{inst.name} ({size}) written to {out_path}", markup=False)
