"""A held-out instance shape, written apart from ``gpualloc.sources.generate``.

Daily periods (24 h), four clusters in CN, SG and US, 70% of the jobs free to start anywhere
from a release in the first quarter to the horizon's end (hundreds of starts per job), pools
sized at ``tight`` x the average demand, a per-period TPP cap on CN's 3A090.a parts at half
of CN's fleet, a B200 GPU-hour cap, and 80% of the start-ups with credits for about half of
what their jobs would cost. Deterministic in the seed. Usage:

    python scripts/daily_shape.py JOBS STARTUPS PERIODS SEED OUT.json
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

PH = 24  # hours per period
TPP = {"H800": 15832, "Ascend910B": 6016}
CLUSTERS = (
    ("cn-a", "cn-east", "CN", (("H800", 2.1, None), ("H20", 1.1, None))),
    ("cn-b", "cn-north", "CN", (("Ascend910B", 1.4, 512), ("H20", 1.0, None))),
    ("sg-a", "sg-1", "SG", (("H100", 2.6, None), ("A100", 1.5, None))),
    ("us-a", "us-west", "US", (("H100", 2.4, None), ("B200", 4.5, None))),
)
REGIONS = {"cn": ["cn-east", "cn-north", "sg-1"], "us": ["us-west", "sg-1"],
           "sg": ["sg-1", "us-west"]}
ACCS = {"cn": ["H800", "H20", "Ascend910B", "H100", "A100"], "us": ["H100", "B200", "A100"],
        "sg": ["H100", "A100", "B200"]}
SLOW = ("H20", "A100", "Ascend910B")  # twice the GPUs; H20 and A100 one period longer


def _job(rng: random.Random, j: int, startup: dict[str, Any], kind: str, periods: int,
         demand: dict[str, float]) -> dict[str, Any] | None:
    gpus = rng.choice([8, 16, 32, 64, 64, 128, 256, 512])
    dur = rng.randint(1, max(2, periods // 8))
    rel = rng.randint(0, periods // 4)
    dl = periods if rng.random() < 0.7 else \
        min(periods, rel + dur + rng.randint(periods // 4, periods // 2))
    options = []
    for acc in rng.sample(ACCS[kind], rng.randint(1, 3)):
        g = gpus * (2 if acc in SLOW else 1)
        d = dur + 1 if acc in ("H20", "A100") else dur
        if rel + d > dl:
            continue
        options.append({"accelerator": acc, "gpus": g, "periods": d})
        demand[acc] = demand.get(acc, 0) + g * d / len(options)
    if not options:
        return None
    return {"id": f"j{j}", "startup": startup["id"],
            "value": round(rng.lognormvariate(2, 1) * gpus / 64, 2),
            "release": rel, "deadline": dl, "options": options}


def make(jobs: int, startups: int, periods: int, seed: int, tight: float = 0.35,
         credit_share: float = 0.5, cap_share: float = 0.5) -> dict[str, Any]:
    """The instance as a dict (see the module doc)."""
    rng = random.Random(seed)
    clusters = [{"id": c, "region": r, "country": k, "pools": [
        {"accelerator": a, "gpus": 0, "price_per_gpu_hour": p,
         **({} if m is None else {"max_gpus_per_job": m})} for a, p, m in pools]}
        for c, r, k, pools in CLUSTERS]
    kinds, cost, out_startups, out_jobs = {}, {}, [], []
    for s in range(startups):
        kind = rng.choice(["cn", "cn", "us", "sg"])
        sid = f"st{s}"
        kinds[sid], cost[sid] = kind, 0.0
        out_startups.append({"id": sid, "name": f"S{s}", "weight": rng.choice([0.5, 1, 1, 2]),
                             "regions": REGIONS[kind], "credits": None})
    demand: dict[str, float] = {}
    for j in range(jobs):
        startup = rng.choice(out_startups)
        job = _job(rng, j, startup, kinds[startup["id"]], periods, demand)
        if job is None:
            continue
        first = job["options"][0]
        cost[startup["id"]] += first["gpus"] * first["periods"] * PH * 2.0
        if out_jobs and rng.random() < 0.08:
            prev = rng.choice(out_jobs[-20:])
            if prev["startup"] == startup["id"]:
                job["after"] = [prev["id"]]
        if rng.random() < 0.01 and not job.get("after"):
            job["mandatory"] = True
        out_jobs.append(job)
    count: dict[str, int] = {}
    for c in clusters:
        for p in c["pools"]:
            count[p["accelerator"]] = count.get(p["accelerator"], 0) + 1
    for c in clusters:
        for p in c["pools"]:
            avg = demand.get(p["accelerator"], 0) / periods / count[p["accelerator"]]
            p["gpus"] = max(512, int(avg * tight / 64 + 1) * 64)
    for st in out_startups:
        st["credits"] = round(cost[st["id"]] * credit_share, 0) if rng.random() < 0.8 else None
    cn_tpp = sum(p["gpus"] * TPP.get(p["accelerator"], 0)
                 for c in clusters if c["country"] == "CN" for p in c["pools"])
    b200 = sum(p["gpus"] for c in clusters for p in c["pools"] if p["accelerator"] == "B200")
    caps = [{"id": "cn-3a090a", "metric": "tpp", "per": "period",
             "limit": int(cn_tpp * cap_share), "export_classes": ["3A090.a"],
             "countries": ["CN"]},
            {"id": "b200-hours", "metric": "gpu_hours", "per": "horizon",
             "limit": int(b200 * periods * PH * 0.4), "accelerators": ["B200"]}]
    return {"name": f"daily-{jobs}-{seed}", "horizon": {"periods": periods, "period_hours": PH},
            "clusters": clusters, "startups": out_startups, "jobs": out_jobs, "caps": caps,
            "objective": {"cost_weight": 0.0}}


if __name__ == "__main__":
    n, s, p, seed = (int(a) for a in sys.argv[1:5])
    with open(sys.argv[5], "w", encoding="utf-8") as f:
        json.dump(make(n, s, p, seed), f)
