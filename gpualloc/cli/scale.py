"""Synthetic instances, benchmark tiers and trace replay."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import models
from .app import (
    app,
    check_writable,
    fail,
    input_errors,
    out,
    write_or_rescue,
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


@app.command()
def generate(
    clusters: Annotated[int, typer.Option(help="Clusters.")] = 8,
    startups: Annotated[int, typer.Option(help="Start-ups.")] = 12,
    jobs: Annotated[int, typer.Option(help="Jobs.")] = 400,
    periods: Annotated[int, typer.Option(help="Weekly periods.")] = 26,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same instance).")] = 0,
    tier: Annotated[str | None, typer.Option(
        help="A benchmark tier (medium, large, huge); overrides the sizes and seed.")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Write the instance here (YAML, or JSON for .json); default stdout.")]
    = None,
) -> None:
    """Generate a realistic synthetic instance (job shapes fitted from real GPU traces)."""
    from ..sources.generate import TIERS, tier_instance
    from ..sources.generate import generate as make

    check_writable(out_path, "the instance")
    if tier is not None:
        if tier not in TIERS:
            fail(f"unknown tier {tier!r}; choose from {', '.join(TIERS)}")
        inst = tier_instance(tier)
    else:
        try:
            inst = make(clusters=clusters, startups=startups, jobs=jobs, periods=periods,
                        seed=seed)
        except ValueError as e:
            fail(str(e))
    if out_path is None:
        from ..models.io import dump_model

        sys.stdout.write(dump_model(inst, "instance.yaml"))
        return
    if not write_or_rescue(lambda p: models.save_instance(inst, p), out_path, "the instance"):
        raise typer.Exit(2)
    size = f"{len(inst.clusters)} clusters, {len(inst.startups)} start-ups, " \
           f"{len(inst.jobs)} jobs, {inst.horizon.periods} periods"
    out.print(f"{inst.name} ({size}) written to {out_path}", markup=False)
