"""Greedy value-density baseline, exposed as backend ``greedy`` and used as a warm start.

It works on the neutral model's rows, so it respects every rule the exact backends do: a
placement is taken only if every ``<=`` row it appears in stays satisfied (``>=`` rows, the
``min_share`` floors, never block one). Mandatory jobs go first, then the placements of ``>=``
rows, then placements by objective per GPU-period (best first); jobs whose predecessors are not
yet placed are retried in later passes. It proves nothing: its bound is None.

It runs on the model's shared sparse matrix (``model.matrix()``): each pass first screens
every remaining placement at once with numpy (a placement that does not fit now cannot fit
later in the pass, as rows only fill up within a pass, negative precedence terms aside, which
the next pass sees), then walks the survivors in order and checks each exactly against the
current row activities. The screen is repeated within a pass once many checks have failed.
"""

from __future__ import annotations

import time

import numpy as np

from ..model.formulation import LinearModel
from ..model.matrix import concat_ranges
from ..stop import Stop
from .base import BackendResult, Capabilities, ProgressCallback, SolveParams

RESCREEN_AFTER = 20_000  # failed exact checks in a pass before the survivors are screened again


def densities(model: LinearModel) -> np.ndarray:
    """Objective per GPU-period of every placement: the greedy's order (and the LP's first
    columns)."""
    size = (model.field("gpus") * model.field("periods")).astype(np.float64)
    return np.asarray(model.objective, dtype=np.float64) / np.maximum(1.0, size)


def _jobs(model: LinearModel) -> tuple[np.ndarray, np.ndarray]:
    """Per variable its job's number, and per job number whether the job is forced."""
    job_of = model.matrix().job_of
    forced = model.forced_jobs()
    is_forced = np.zeros(len(model.by_job) + model.num_vars, dtype=bool)  # of no job: never
    is_forced[:len(model.by_job)] = [j in forced for j in model.by_job]
    return job_of, is_forced


def greedy_values(model: LinearModel, order: list[int] | None = None,
                  stop: Stop | None = None) -> list[float]:
    """A 0/1 vector satisfying every ``<=`` row (``==`` rows of mandatory jobs if it can).

    ``order`` replaces the value-density order of the placements (mandatory jobs still first).
    ``stop`` ends it early with the placements taken so far (still satisfying every ``<=``).
    """
    n = model.num_vars
    values = np.zeros(n)
    if n == 0:
        return []
    mat = model.matrix()
    job_of, forced = _jobs(model)
    mandatory = forced[job_of]
    cost = mat.cost
    entry_col = np.repeat(np.arange(n), np.diff(mat.col_ptr))
    floor = mat.sense == 1  # ">=" rows (min_share floors): they never block, their vars first
    in_floor = np.zeros(n, dtype=bool)
    in_floor[entry_col[floor[mat.col_rows]]] = True
    if order is None:
        first = model.field("start")
        ranked = np.lexsort((np.arange(n), first, -densities(model), ~in_floor, ~mandatory))
    else:
        ranked = np.asarray(order, dtype=np.int64)
        ranked = ranked[np.argsort(~mandatory[ranked], kind="stable")]
    ranked = ranked[(cost[ranked] > 0) | mandatory[ranked]]
    lhs = np.zeros(mat.m)
    limit = np.where(floor, np.inf, mat.rhs + 1e-9 * np.maximum(1.0, np.abs(mat.rhs)))
    placed = np.zeros(len(forced), dtype=bool)
    ptr = mat.col_ptr.tolist()
    changed = True
    while changed:
        changed = False
        if stop is not None and stop.stopped:
            break
        todo = _screen(ranked[~placed[job_of[ranked]]], mat, lhs, limit, entry_col)
        lhs_l, limit_l = lhs.tolist(), limit.tolist()
        taken = placed.tolist()
        jobs = job_of[todo].tolist()
        candidates = todo.tolist()
        failed = 0
        k = 0
        while k < len(candidates):
            if k % 512 == 0 and stop is not None and stop.stopped:
                return values.tolist()
            i, job = candidates[k], jobs[k]
            k += 1
            if taken[job]:
                continue
            a, b = ptr[i], ptr[i + 1]
            rows, coefs = mat.col_rows[a:b].tolist(), mat.col_vals[a:b].tolist()
            if all(lhs_l[r] + c <= limit_l[r] for r, c in zip(rows, coefs, strict=True)):
                for r, c in zip(rows, coefs, strict=True):
                    lhs_l[r] += c
                values[i] = 1.0
                taken[job] = True
                changed = True
            else:
                failed += 1
                if failed >= RESCREEN_AFTER:  # many misses: screen the rest at once again
                    failed = 0
                    if stop is not None and stop.stopped:
                        return values.tolist()
                    lhs[:] = lhs_l
                    rest = np.asarray(candidates[k:], dtype=np.int64)
                    rest = rest[~np.asarray(taken)[job_of[rest]]]
                    rest = _screen(rest, mat, lhs, limit, entry_col)
                    candidates, jobs, k = rest.tolist(), job_of[rest].tolist(), 0
        lhs[:] = lhs_l
        placed[:] = taken
    return values.tolist()


def _screen(cands: np.ndarray, mat, lhs: np.ndarray, limit: np.ndarray,
            entry_col: np.ndarray) -> np.ndarray:
    """The candidates (in their order) whose every row still has room for them."""
    if len(cands) == 0:
        return cands
    room = limit - lhs
    if 4 * len(cands) >= mat.n:  # most columns: every entry at once is cheaper than a gather
        over = np.flatnonzero(mat.col_vals > room[mat.col_rows])
        bad_cols = entry_col[over]
    else:
        take = concat_ranges(mat.col_ptr, cands)
        over = mat.col_vals[take] > room[mat.col_rows[take]]
        bad_cols = entry_col[take[over]]
    bad = np.zeros(mat.n, dtype=bool)
    bad[bad_cols] = True
    return cands[~bad[cands]]


class GreedyBackend:
    """Value-density greedy heuristic (fast, rule-complete, no proof)."""

    name = "greedy"
    capabilities = Capabilities(proves_bound=False, takes_hint=False, stops_on_request=True,
                                deterministic=True)

    def available(self) -> bool:
        return True

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              stop: Stop | None = None) -> BackendResult:
        began = time.perf_counter()
        values = greedy_values(model, stop=stop if stop is not None else params.stop())
        if model.check(values):
            return BackendResult("unknown", None, None, {"greedy": "no feasible plan found"})
        return BackendResult("feasible", values, None,
                             {"greedy_seconds": time.perf_counter() - began})
