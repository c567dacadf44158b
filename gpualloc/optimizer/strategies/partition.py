"""Huge models by partition (POP-style): solve parts of the jobs apart, then the whole.

At 20,000 jobs and 850k placements the LP by column generation takes 390 s or more to
converge, so the LNS gets HiGHS on its support late or never. Here, after the whole model's
Lagrangian (the bound, and a priced greedy plan), the jobs are split into parts of about
``PART_VARS`` placements, where the LP converges in under a minute. Jobs linked by a row that
is not shared (a start-up's credits, tranches and floor, precedence) stay in one part; each
shared row (``SHARED_KINDS``: pool capacity and caps) is split: each part keeps what the base
plan (the better of the start and the priced greedy plan) uses there plus a share of the rest
in proportion to its demand. The parts are solved one after the other by the LNS from the base
plan's placements; their plans join into one plan that satisfies every row (a row's parts'
rhs sum to its rhs). The LNS on the whole model then improves it for the rest of the budget
(``WHOLE_SHARE``) and gives the bound (a part's bound holds for its share only, unused).

Parts left unsolved (SIGINT/SIGTERM, or a part that found no plan) keep the base plan's
placements, so the joined plan is never worse than the base plan; after SIGINT/SIGTERM it is
returned at once, without the search of the whole.
"""

from __future__ import annotations

import heapq
import math
import time

import numpy as np

from ..backends.base import BackendResult, Progress, ProgressCallback, SolveParams
from ..backends.greedy import greedy_values
from ..model.formulation import LinearModel
from ..model.matrix import linked_columns
from ..stop import Stop
from .lagrange import priced_order
from .lns import LAGRANGE_SECONDS, lagrangian_stage, lns_solve
from .neighbourhood import restricted

SHARED_KINDS = frozenset({"capacity", "cap"})  # rows split among the parts
PARTITION_MIN_JOBS = 15_000  # auto: partitions from this many jobs (and the LNS's size)
PART_VARS = 150_000  # placements per part, about
WHOLE_SHARE = 0.35  # of the budget left after the set-up, for the LNS on the whole model
MIN_PART_SECONDS = 15.0  # fewer parts when each would get less than this


def job_groups(model: LinearModel) -> list[list[int]]:
    """The columns of each group of jobs linked by rows that are not shared (``shared_rows``;
    the per-job assignment rows aside), largest first."""
    linking = ~shared_rows(model) & np.fromiter((r.kind != "assign" for r in model.rows),
                                                bool, len(model.rows))
    return [g.tolist() for g in linked_columns(model, linking)]


def split(groups: list[list[int]], parts: int) -> list[list[int]]:
    """``groups`` in ``parts`` parts of about equal placements (largest group to the lightest
    part first; deterministic), each part's columns in ascending order."""
    heap = [(0, k) for k in range(parts)]
    out: list[list[int]] = [[] for _ in range(parts)]
    for g in groups:
        load, k = heapq.heappop(heap)
        out[k].extend(g)
        heapq.heappush(heap, (load + len(g), k))
    return [sorted(p) for p in out if p]


def shares(model: LinearModel, parts: list[list[int]],
           plan: list[float] | None = None) -> np.ndarray:
    """Per row and part (``rows x parts``) the part's rhs: on shared rows what ``plan`` (if
    given) uses there, plus a share of the rest in proportion to the part's demand (each
    placement's ``|coef|`` over its job's number of placements: a job's use spread over its
    options); every other row's own rhs. A row's parts' rhs sum to its rhs, so the joined
    plans of the parts satisfy it, and each part can keep ``plan``'s placements."""
    mat = model.matrix()
    k = len(parts)
    part_of = np.zeros(mat.n, np.int64)
    for p, cols in enumerate(parts):
        part_of[cols] = p
    job_of = mat.job_of
    per_job = np.bincount(job_of, minlength=int(job_of.max()) + 1 if mat.n else 0)
    slot = mat.rows * k + part_of[mat.cols]

    def by_part(weights: np.ndarray) -> np.ndarray:
        out = np.bincount(slot, weights=weights, minlength=mat.m * k)  # int64 when empty
        return out.astype(np.float64).reshape(mat.m, k)

    demand = by_part(np.abs(mat.vals) / per_job[job_of[mat.cols]])
    total = demand.sum(axis=1, keepdims=True)
    share = np.divide(demand, total, out=np.full_like(demand, 1.0 / k), where=total > 0)
    rhs = mat.rhs[:, None]
    if plan is None:
        out = share * rhs
    else:
        used = by_part(mat.vals * np.asarray(plan, dtype=np.float64)[mat.cols])
        out = used + share * np.maximum(0.0, rhs - used.sum(axis=1, keepdims=True))
    shared = shared_rows(model)
    out[~shared] = rhs[~shared]
    return out


def shared_rows(model: LinearModel) -> np.ndarray:
    """Per row, whether the parts split it (``SHARED_KINDS``, ``<=``); every other row links
    its jobs into one part."""
    return np.fromiter((r.kind in SHARED_KINDS and r.sense == "<=" for r in model.rows), bool,
                       len(model.rows))


def part_count(model: LinearModel, seconds: float | None) -> int:
    """How many parts: about ``PART_VARS`` placements each, at least ``MIN_PART_SECONDS``."""
    parts = max(1, math.ceil(model.num_vars / PART_VARS))
    if seconds is not None:
        parts = min(parts, int(seconds * (1 - WHOLE_SHARE) // MIN_PART_SECONDS))
    return max(1, parts)


def partition_solve(model: LinearModel, params: SolveParams, stop: Stop | None = None,
                    start: list[float] | None = None,
                    progress: ProgressCallback | None = None) -> BackendResult:
    """Maximise ``model`` part by part, then as a whole (see the module doc), from the better
    of the joined plan and ``start``. A fixed number of LNS rounds (deterministic) or no time
    limit: the LNS alone."""
    stop = stop if stop is not None else params.stop()
    began = time.perf_counter()
    remaining = stop.remaining()
    count = part_count(model, remaining)
    if params.lns_rounds is not None or remaining is None or count < 2:
        return lns_solve(model, params, stop, start, progress)
    parts = split(job_groups(model), count)
    if len(parts) < 2:
        return lns_solve(model, params, stop, start, progress)
    # the whole model's Lagrangian first: the bound, and a priced greedy plan to share by
    lag, _ = lagrangian_stage(model, stop, min(LAGRANGE_SECONDS, 0.1 * remaining))
    plans = [] if start is None else [start]
    if lag is not None and lag.reduced is not None and not stop.stopped:
        plans.append(greedy_values(model, order=priced_order(model, lag.reduced), stop=stop))
    valid = [p for p in plans if not model.check(p)]
    base = max(valid, key=model.objective_value) if valid else None
    bound = None if lag is None or lag.bound is None else lag.bound + model.objective_offset
    limits = shares(model, parts, base)
    # the joined plan: each part's plan once solved, the base plan's placements until then
    values = np.zeros(model.num_vars) if base is None else np.asarray(base, dtype=np.float64)
    zeros, activity = np.zeros(model.num_vars), np.zeros(model.matrix().m)
    cost = np.asarray(model.objective, dtype=np.float64)
    stats: dict = {"partition_parts": len(parts),
                   "partition_sizes": [len(p) for p in parts]}
    objectives, why = [], None
    parts_end = (stop.remaining() or 0.0) * (1 - WHOLE_SHARE)
    parts_began = time.perf_counter()
    for k, cols in enumerate(parts):
        left = parts_end - (time.perf_counter() - parts_began)
        seconds = left / (len(parts) - k)
        if stop.stopped or seconds < 1.0:
            why = f"part {k + 1} of {len(parts)}: {stop.why() or 'no time left'}"
            break
        sub = restricted(model, zeros, activity, cols, limits[:, k])
        part_params = SolveParams(time_limit=seconds, seed=params.seed + k,
                                  workers=params.workers, gap_tolerance=params.gap_tolerance)
        r = lns_solve(sub, part_params, stop.child(seconds=seconds),
                      None if base is None else [base[i] for i in cols])
        del sub
        if r.values is None:
            why = f"part {k + 1} of {len(parts)}: no plan ({r.status})"
            break
        values[cols] = np.asarray(r.values) > 0.5
        objectives.append(round(float(np.dot(cost[cols], values[cols])), 6))
        if progress is not None:  # the parts' plans so far (no bound of the whole yet)
            progress(Progress(float(np.dot(cost, values)) + model.objective_offset, bound,
                              time.perf_counter() - began))
    stats.update(partition_objectives=objectives,
                 partition_seconds=round(time.perf_counter() - began, 3))
    joined: list[float] | None = values.tolist()
    if model.check(joined):
        joined, why = None, why or "the joined plan fails model.check"
    if base is not None and (
            joined is None or model.objective_value(base) > model.objective_value(joined)):
        joined = base  # never expected: a part's plan is never worse than its start
    if why is not None:
        stats["partition_skipped"] = why
    if stop.interrupted:  # SIGINT/SIGTERM: the joined plan at once, no search of the whole
        return BackendResult("unknown" if joined is None else "feasible", joined,
                             None if lag is None else lag.bound,
                             {**stats, "strategy": "partition", "stopped": True})
    r = lns_solve(model, params, stop, joined, progress, lagrangian=lag)
    r.stats = {**stats, **r.stats, "strategy": "partition"}
    return r


__all__ = ["PARTITION_MIN_JOBS", "SHARED_KINDS", "job_groups", "partition_solve", "shared_rows",
           "shares", "split"]
