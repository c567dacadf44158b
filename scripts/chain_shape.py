"""A held-out instance shape: a generated instance with deep dependency chains and tight credits.

Within each start-up, runs of 3-8 consecutive jobs become chains (each after the one before
it, none mandatory), and every credit grant is scaled by 0.7. Deterministic in the seed.
Usage:

    python scripts/chain_shape.py SEED OUT.json
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from gpualloc.sources.generate import generate

CREDIT_SCALE = 0.7


def make(seed: int) -> dict[str, Any]:
    data = generate(10, 20, 800, 52, seed=seed, windows="wide").model_dump(
        mode="json", by_alias=True, exclude_none=True)
    rng = random.Random(seed)
    by_startup: dict[str, list[dict[str, Any]]] = {}
    for job in data["jobs"]:
        by_startup.setdefault(job["startup"], []).append(job)
    for jobs in by_startup.values():
        i = 0
        while i < len(jobs):
            n = rng.randint(3, 8)
            for a, b in zip(jobs[i:i + n], jobs[i + 1:i + n], strict=False):
                b["after"] = sorted(set(b.get("after", [])) | {a["id"]})
                b["mandatory"] = False
            i += n
    for startup in data["startups"]:
        if startup.get("credits") is not None:
            startup["credits"] *= CREDIT_SCALE
        for tranche in startup.get("tranches", []):
            tranche["credits"] *= CREDIT_SCALE
    return data


if __name__ == "__main__":
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(make(int(sys.argv[1])), f)
