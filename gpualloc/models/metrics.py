"""Metrics of a plan: per start-up value and spend, cap use per window, pool utilization.

Everything is recomputed from the instance (costs from prices, values from the options run),
with the same helpers as the validator. The result is plain JSON: numbers, strings, lists,
dicts and ``None`` (never infinity).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from .instance import Instance, Startup
from .plan import Plan
from .rules import (
    REL_TOL,
    assignment_cost,
    assignment_value,
    cap_use,
    objective_of,
    period_spend,
    pool_use,
    shares,
    tranche_segments,
    weight_of,
    window_limit,
)


def _binding(use: float, limit: float | None) -> bool:
    if limit is None:
        return False
    return use == limit or (limit > 0 and use >= limit * (1 - REL_TOL))


def plan_metrics(instance: Instance, plan: Plan) -> dict[str, Any]:
    """Metrics of ``plan`` (see the module docstring and README), JSON-serialisable."""
    known = [a for a in plan.assignments if a.job in instance.job_by_id]

    startups: dict[str, dict[str, Any]] = {}
    asked: dict[str, int] = defaultdict(int)
    for job in instance.jobs:
        asked[job.startup] += 1
    run: dict[str, set[str]] = defaultdict(set)
    value: dict[str, float] = defaultdict(float)
    spend: dict[str, float] = defaultdict(float)
    for a in known:
        sid = instance.job_by_id[a.job].startup
        run[sid].add(a.job)
        value[sid] += assignment_value(instance, a)
        spend[sid] += assignment_cost(instance, a)
    per_period = period_spend(instance, known)
    fair = shares(instance, known)
    asked_values = instance.asked_value
    for s in instance.startups:
        share = spend[s.id] / s.credits if s.credits else None
        startups[s.id] = {
            "jobs_run": len(run[s.id]),
            "jobs_asked": asked[s.id],
            "value": value[s.id],
            "weighted_value": s.weight * value[s.id],
            "spend": spend[s.id],
            "credits": s.credits,
            "spend_share": share,
            "asked_value": asked_values[s.id],
            "share": fair.get(s.id),
            "min_share": s.min_share,
            "spend_by_period": per_period[s.id],
            "tranches": tranche_metrics(instance, s, per_period[s.id]),
        }

    caps: dict[str, dict[str, Any]] = {}
    for cap in instance.caps:
        use, share_use = cap_use(instance, cap, known)
        windows = []
        for window in cap.windows(instance.horizon.periods):
            total = math.fsum(use[t] for t in window)
            shared = math.fsum(share_use[t] for t in window) if share_use is not None else None
            limit = window_limit(cap, shared)
            windows.append({"periods": [window.start, window.stop - 1], "use": total,
                            "limit": limit, "binding": _binding(total, limit)})
        peak = max(windows, key=lambda w: w["use"], default=None)
        caps[cap.id] = {
            "metric": cap.metric,
            "per": cap.per,
            "limit": cap.limit,
            "windows": windows,
            "peak_use": peak["use"] if peak else 0.0,
            "peak_limit": peak["limit"] if peak else None,
        }

    pools: dict[str, dict[str, Any]] = {}
    used = pool_use(instance, known)
    horizon = instance.horizon.periods
    for cluster in instance.clusters:
        for pool in cluster.pools:
            capacity = [pool.gpus_at(t) for t in range(horizon)]
            row = used.get((cluster.id, pool.accelerator), [0] * horizon)
            util = [u / c if c else None for u, c in zip(row, capacity, strict=True)]
            defined = [x for x in util if x is not None]
            pools[f"{cluster.id}/{pool.accelerator}"] = {
                "capacity": capacity,
                "used": row,
                "utilization": util,
                "mean_utilization": sum(defined) / len(defined) if defined else None,
            }

    total_value = math.fsum(assignment_value(instance, a) for a in plan.assignments)
    weighted = math.fsum(weight_of(instance, a) * assignment_value(instance, a)
                         for a in plan.assignments)
    return {
        "startups": startups,
        "caps": caps,
        "pools": pools,
        "objective": objective_of(instance, plan.assignments),
        "total_cost": math.fsum(assignment_cost(instance, a) for a in plan.assignments),
        "total_value": total_value,
        "total_weighted_value": weighted,
        "smallest_share": min(fair.values()) if fair else None,
    }


def tranche_metrics(instance: Instance, startup: Startup,
                    spend: list[float]) -> list[dict[str, Any]]:
    """Per tranche: its periods, credits, what is released by its last period, the spend in
    its periods and up to its end (``unspent``: what is left
    to spend: the release minus the cumulative spend, or without carry-over the tranche minus
    its periods' spend), and where it binds (carry-over: the periods where the
    cumulative spend reaches the release; otherwise: the tranche's periods when its spend
    reaches its credits). Empty without tranches."""
    out = []
    cumulative = [0.0]
    for x in spend:
        cumulative.append(cumulative[-1] + x)
    for k, periods in tranche_segments(startup, instance.horizon.periods):
        if k is None:
            continue
        tranche = startup.tranches[k]
        released = startup.released(periods.stop - 1) or 0.0
        inside = math.fsum(spend[t] for t in periods)
        if startup.carry_over:
            binds = [t for t in periods if _binding(cumulative[t + 1], released)]
        else:
            binds = list(periods) if _binding(inside, tranche.credits) else []
        out.append({"index": k, "from": tranche.from_, "periods": [periods.start,
                                                                   periods.stop - 1],
                    "credits": tranche.credits, "released": released, "spend": inside,
                    "cumulative_spend": cumulative[periods.stop],
                    "unspent": (released - cumulative[periods.stop]) if startup.carry_over
                    else tranche.credits - inside, "binding": bool(binds),
                    "binding_periods": binds})
    return out


__all__ = ["plan_metrics", "tranche_metrics"]
