"""A held-out instance shape: a generated instance with a tight fleet, caps and budgets.

Every pool's GPUs (and its capacity changes) are scaled by ``--pools``, every cap's limit
(and a share cap's fraction) by ``--caps``, every credit grant (and its tranches) by
``--credits``; mandatory jobs become optional unless ``--keep-mandatory``. Wide windows by
default, so a long horizon gives hundreds of start positions per job. Deterministic in the
seed. Usage:

    python scripts/tight_shape.py CLUSTERS STARTUPS JOBS PERIODS SEED OUT.json \
        [--pools 0.5] [--caps 0.5] [--credits 0.6] [--keep-mandatory] [--windows wide]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gpualloc.sources.generate import generate


def make(clusters: int, startups: int, jobs: int, periods: int, seed: int, *,
         pools: float = 0.5, caps: float = 0.5, credits: float = 0.6,
         keep_mandatory: bool = False, windows: str = "wide") -> dict[str, Any]:
    """The generated instance as a dict, tightened."""
    data = generate(clusters, startups, jobs, periods, seed=seed, windows=windows).model_dump(
        mode="json", by_alias=True, exclude_none=True)
    for cluster in data["clusters"]:
        for pool in cluster["pools"]:
            pool["gpus"] = max(1, int(pool["gpus"] * pools))
            for change in pool.get("capacity", []):
                change["gpus"] = max(0, int(change["gpus"] * pools))
    for cap in data.get("caps", []):
        if "limit" in cap:
            cap["limit"] *= caps
        if "fraction" in cap:
            cap["fraction"] *= caps
    for startup in data["startups"]:
        tranches = startup.get("tranches", [])
        for tranche in tranches:
            tranche["credits"] *= credits
        if tranches:
            startup["credits"] = sum(t["credits"] for t in tranches)
        elif startup.get("credits") is not None:
            startup["credits"] *= credits
    if not keep_mandatory:
        for job in data["jobs"]:
            job["mandatory"] = False
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("clusters", "startups", "jobs", "periods", "seed"):
        parser.add_argument(name, type=int)
    parser.add_argument("out")
    parser.add_argument("--pools", type=float, default=0.5)
    parser.add_argument("--caps", type=float, default=0.5)
    parser.add_argument("--credits", type=float, default=0.6)
    parser.add_argument("--keep-mandatory", action="store_true")
    parser.add_argument("--windows", default="wide")
    a = parser.parse_args()
    data = make(a.clusters, a.startups, a.jobs, a.periods, a.seed, pools=a.pools, caps=a.caps,
                credits=a.credits, keep_mandatory=a.keep_mandatory, windows=a.windows)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(data, f)


if __name__ == "__main__":
    main()
