"""Huge models by partition: the whole model's jobs in parts, one part after another, then
the whole.

At 20,000 jobs and 850k placements the LP by column generation takes 390 s or more to
converge, so the LNS gets HiGHS on its support late or never. Here, after the whole model's
Lagrangian (the bound, and a priced greedy plan), the jobs are split into parts of about
``PART_VARS`` placements, where the LP converges in seconds. Jobs linked by a row that is not
shared (a start-up's credits, tranches and floor, precedence) stay in one part; the shared
rows (``SHARED_KINDS``: pool capacity and caps) are what the parts compete for. The parts are
solved one after the other by the LNS, each with every other part fixed at the joined plan so
far (the parts solved: their plans; the others: the base plan's placements, the better valid
one of the start and the priced greedy plan): a part gets what the others leave of each shared
row, less the placements that cannot fit that (``part_model``), and starts from the joined
plan's placements, so the joined plan satisfies every row and never gets worse. The LNS on the
whole model then improves it for the rest of the budget (``WHOLE_SHARE``) and gives the bound
(a part's bound holds with the other parts fixed only, unused).

Parts left unsolved (SIGINT/SIGTERM, or a part that found no plan) keep the joined plan's
placements; after SIGINT/SIGTERM it is returned at once, without the search of the whole.
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
from ..model.presolve import drop_dead
from ..stop import Stop
from .lagrange import priced_order
from .lns import LAGRANGE_SECONDS, lagrangian_stage, lns_solve
from .neighbourhood import restricted

SHARED_KINDS = frozenset({"capacity", "cap", "rounding"})  # rows split among the parts
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


def part_model(model: LinearModel, values: np.ndarray,
               cols: list[int]) -> tuple[LinearModel, list[int]]:
    """The sub-model of part ``cols`` with every other column fixed at ``values`` (each shared
    row's rhs less the other parts' use), without the placements that cannot fit what is left
    (``model.presolve.drop_dead``: at huge, half of a part's), and its columns in ``model``."""
    sub = restricted(model, values, model.matrix().activity(values), cols)
    kept = drop_dead(sub)
    return sub, np.asarray(cols, dtype=np.int64)[kept].tolist()


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
    # the whole model's Lagrangian first: the bound, and a priced greedy plan for the base
    lag, _ = lagrangian_stage(model, stop, min(LAGRANGE_SECONDS, 0.1 * remaining))
    plans = [] if start is None else [start]
    if lag is not None and lag.reduced is not None and not stop.stopped:
        plans.append(greedy_values(model, order=priced_order(model, lag.reduced), stop=stop))
    valid = [p for p in plans if not model.check(p)]
    base = max(valid, key=model.objective_value) if valid else None
    bound = None if lag is None or lag.bound is None else lag.bound + model.objective_offset
    # the joined plan: each part's plan once solved, the base plan's placements until then
    values = np.zeros(model.num_vars) if base is None else np.asarray(base, dtype=np.float64)
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
        sub, cols = part_model(model, values, cols)
        part_params = SolveParams(time_limit=seconds, seed=params.seed + k,
                                  workers=params.workers, gap_tolerance=params.gap_tolerance)
        r = lns_solve(sub, part_params, stop.child(seconds=seconds),
                      None if base is None else values[cols].tolist())
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


__all__ = ["PARTITION_MIN_JOBS", "SHARED_KINDS", "job_groups", "part_model", "partition_solve",
           "shared_rows", "split"]
