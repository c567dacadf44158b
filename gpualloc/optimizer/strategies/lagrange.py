"""A fast Lagrangian upper bound with dual prices, for models too large for an LP solve.

Every row but the per-job assignment rows is relaxed with a multiplier ``y`` (``y >= 0`` on
``<=`` rows, ``y <= 0`` on ``>=`` rows, free on ``==`` rows). What is left, at most one
placement per job (exactly one for forced jobs), is solved by inspection of the reduced costs
``rc = c - A'y``::

    L(y) = y.b + sum_{free jobs} max(0, max_{i in job} rc_i) + sum_{forced jobs} max rc_i

Every ``L(y)`` is a proven upper bound on ``sum c x``, and since the kept subproblem is
integral, ``min_y L(y)`` equals the LP optimum. ``L`` is minimised by a projected subgradient
method: a Polyak step ``mu (L(y) - target) / |d|²`` along the Camerini-Fratta-Maffioli
deflected subgradient ``d``, with ``mu`` halved after a run of non-improving steps (a run that
grows from 5 to 40). It takes about half the iterations of a plain Polyak step (``mu = 2``,
halved after 25 steps); the volume algorithm was no better. On the large tier (131,745
variables, 1.36M nonzeros, 50-80 iterations a second) it is 0.3% above the LP optimum after
5 s and 0.1% after 15 s; on the medium tier and the bundled portfolio it reaches it. Without
a ``target`` steps aim 10% below the best bound so far, which on the large tier does as well
as aiming at the greedy plan's objective (and saves the greedy's seconds).

Each relaxed row is divided by its mean ``|coef|`` (credit rows reach 1e7, precedence rows are
0/1), which leaves the bound valid and puts the multipliers of binding rows on the scale of
the objective. Dividing by the largest ``|coef|`` instead stalls 4% above the LP optimum on
the portfolio, whose credit rows then need multipliers hundreds of times those of the rest.

``priced_order`` turns the reduced costs into a greedy order. With the large tier's prices
the greedy plan is worth 23,360 (plain greedy 22,141); ordering by reduced cost alone gives
23,519 there, but loses 1-18% against it on the medium tier and the portfolio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ..model.formulation import LinearModel
from ..model.matrix import concat_ranges
from ..stop import Stop, StopRequested

MU, MIN_MU = 2.0, 1e-6  # Polyak step factor: start, and the floor that ends the search
PATIENCE, MAX_PATIENCE = 5, 40  # halve mu after this many non-improving steps (grows by 5)
DEFLECTION = 1.5  # Camerini-Fratta-Maffioli: d = g + beta d_prev, beta = max(0, -1.5 g.d/|d|²)
TARGET_GAP = 0.1  # without a target: aim this share below the best bound
SAFETY = 1e-9  # relative margin for floating-point error on the bound


@dataclass
class LagrangeResult:
    """Best proven bound (without ``objective_offset``), the row prices ``y`` that gave it (one
    per ``model.rows``; assignment rows kept in the subproblem carry 0) and the reduced costs
    ``c - A'y`` at those prices. ``bound`` is None when the model is infeasible or the stop
    came during the set-up."""

    bound: float | None
    prices: list[float] | None
    reduced: list[float] | None
    iterations: int
    seconds: float


class _Relaxation:
    """The relaxed rows as scaled coordinate arrays over the model's matrix (its index
    arrays shared), and the per-job subproblem."""

    def __init__(self, model: LinearModel, stop: Stop | None = None) -> None:
        def check() -> None:  # the set-up takes ~1.8 s at 650k placements: stoppable
            if stop is not None and stop.stopped:
                raise StopRequested("setting up the Lagrangian", stop.why() or "stop")

        mat = model.matrix()
        self.n = model.num_vars
        self.c = mat.cost
        job_of = mat.job_of  # a column of no job: from len(jobs_list) on
        jobs_list = list(model.by_job.items())
        sizes = [len(idx) for _, idx in jobs_list]
        self.infeasible = bool(model.infeasible)
        forced: set[str] = set()
        relaxed = []
        for k, row in enumerate(model.rows):
            if k % 4096 == 0:
                check()
            if whole_assignment_row(row, job_of, sizes):
                if row.sense == "==":
                    forced.add(jobs_list[job_of[row.vars[0]]][0])
                continue  # kept in the subproblem
            if not any(row.coefs):  # a constant row: 0 (sense) rhs
                self.infeasible |= not {"<=": row.rhs >= 0.0, ">=": row.rhs <= 0.0,
                                        "==": row.rhs == 0.0}[row.sense]
                continue
            relaxed.append(k)
        forced |= model.forced_jobs()  # "exactly one" holds for these, whatever their rows
        check()
        # The matrix's own index arrays, shared (a second copy was 40 bytes a nonzero): the
        # entries of a row kept in the subproblem get scale 0. Vectors over rows (y, b, the
        # subgradient) hold the relaxed rows only, ``index`` into the model's rows.
        self.mat = mat
        self.index = np.array(relaxed, dtype=np.int64)
        self.m = len(relaxed)
        counts = np.diff(mat.row_ptr)
        size = np.bincount(mat.rows, weights=np.abs(mat.vals), minlength=mat.m)
        keep = np.zeros(mat.m, bool)
        keep[self.index] = True
        # row scale 1 / mean |coef|: binding rows then get multipliers of the objective's order
        scale = np.divide(counts, size, out=np.zeros(mat.m), where=keep & (size > 0))
        self.scale = scale[self.index]
        self.rows, self.cols, self.row_ptr = mat.rows, mat.cols, mat.row_ptr
        self.vals = mat.vals * scale[mat.rows]
        check()
        self.col_rows, self.col_ptr = mat.col_rows, mat.col_ptr
        self.col_vals = mat.col_vals * scale[mat.col_rows]
        self.b = mat.rhs[self.index] * self.scale
        self.sense = mat.sense[self.index]
        check()
        jobs = [(job, idx) for job, idx in jobs_list if idx]
        alone = np.flatnonzero(job_of >= len(jobs_list)).tolist()  # columns of no job
        jobs += [(None, [i]) for i in alone]
        sizes_arr = np.array([len(idx) for _, idx in jobs], dtype=np.int64)
        self.order = np.fromiter(chain.from_iterable(idx for _, idx in jobs), dtype=np.int64,
                                 count=int(sizes_arr.sum()))
        self.starts = np.concatenate(([0], np.cumsum(sizes_arr)[:-1]))
        self.seg = np.repeat(np.arange(len(jobs)), sizes_arr)
        self.forced = np.array([job in forced for job, _ in jobs], dtype=bool)

    def project(self, y: np.ndarray) -> np.ndarray:
        """``y`` onto its sign constraints."""
        y = np.where(self.sense == 0, np.maximum(y, 0.0), y)
        return np.where(self.sense == 1, np.minimum(y, 0.0), y)

    def evaluate(self, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``(L(y), b - A x(y), rc)``; ``A'y`` gathers only the rows with ``y != 0``."""
        full = np.zeros(self.mat.m)
        full[self.index] = y
        nz = self.index[np.flatnonzero(y)]
        if 3 * len(nz) < self.m:
            k = concat_ranges(self.row_ptr, nz)
            aty = np.bincount(self.cols[k], weights=self.vals[k] * full[self.rows[k]],
                              minlength=self.n)
        else:
            aty = np.bincount(self.cols, weights=self.vals * full[self.rows], minlength=self.n)
        rc = self.c - aty
        if not len(self.order):
            return float(y @ self.b), self.b.copy(), rc
        r = rc[self.order]
        best = np.maximum.reduceat(r, self.starts)
        take = self.forced | (best > 0.0)
        value = float(y @ self.b + best[take].sum())
        hit = np.flatnonzero((r == best[self.seg]) & take[self.seg])
        first = hit[np.r_[True, self.seg[hit[1:]] != self.seg[hit[:-1]]]] if len(hit) else hit
        k = concat_ranges(self.col_ptr, self.order[first])  # A x(y) over the chosen columns only
        ax = np.bincount(self.col_rows[k], weights=self.col_vals[k], minlength=self.mat.m)
        return value, self.b - ax[self.index], rc


def whole_assignment_row(row, job_of: np.ndarray, sizes: list[int]) -> bool:
    """Whether ``row`` is one job's whole "at most / exactly one" assignment row (``sizes``:
    each job's number of columns)."""
    if row.kind != "assign" or not row.vars or row.rhs != 1.0 or row.sense not in ("<=", "=="):
        return False
    job = int(job_of[row.vars[0]])
    if job >= len(sizes) or len(row.vars) != sizes[job] or any(c != 1.0 for c in row.coefs):
        return False
    vs = np.asarray(row.vars)
    return bool((job_of[vs] == job).all()) and len(np.unique(vs)) == len(vs)


def lagrangian_bound(model: LinearModel, time_limit: float | None = 10.0, *,
                     target: float | None = None, max_iterations: int = 2000,
                     stop: Stop | None = None) -> LagrangeResult:
    """Minimise the Lagrangian dual of ``model`` (see the module doc) within ``time_limit``
    seconds (wall clock, checked every iteration), ``stop`` and ``max_iterations``.

    ``target`` is a known objective (e.g. a greedy plan's): steps aim at it and the search
    stops once the bound reaches it. Without it, steps aim ``TARGET_GAP`` below the best
    bound. The bound is valid whatever the target. Deterministic.
    """
    began = time.perf_counter()
    deadline = None if time_limit is None else began + time_limit
    try:
        lag = _Relaxation(model, stop)
    except StopRequested:  # no bound (None), as for an infeasible model: nothing is proven
        return LagrangeResult(None, None, None, 0, time.perf_counter() - began)
    if lag.infeasible:
        return LagrangeResult(None, None, None, 0, time.perf_counter() - began)
    y = np.zeros(lag.m)
    best, best_y, best_rc = np.inf, y, lag.c
    mu, patience, since = MU, PATIENCE, 0
    direction = None
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        value, g, rc = lag.evaluate(y)
        if value < best - SAFETY * max(1.0, abs(best)) or not np.isfinite(best):
            best, best_y, best_rc, since = value, y, rc, 0
        else:
            since += 1
            if since >= patience:
                mu, since, patience = mu / 2, 0, min(patience + 5, MAX_PATIENCE)
        aim = best - TARGET_GAP * max(1.0, abs(best)) if target is None else target
        if value - aim <= SAFETY * max(1.0, abs(value)) or mu < MIN_MU:
            break  # the bound meets the target (or the steps are spent)
        if deadline is not None and time.perf_counter() >= deadline:
            break
        if stop is not None and stop.stopped:
            break
        # leave out components that point out of the sign cone at its boundary
        g = np.where(((lag.sense == 0) & (y <= 0.0) & (g > 0.0))
                     | ((lag.sense == 1) & (y >= 0.0) & (g < 0.0)), 0.0, g)
        if direction is not None and (dd := float(direction @ direction)) > 0.0:
            g = g + max(0.0, -DEFLECTION * float(g @ direction) / dd) * direction
        norm = float(g @ g)
        if norm == 0.0:
            break  # x(y) is feasible and complementary: L(y) is the optimum
        direction = g
        y = lag.project(y - mu * (value - aim) / norm * g)
    prices = np.zeros(len(model.rows))
    prices[lag.index] = best_y * lag.scale
    return LagrangeResult(best + SAFETY * max(1.0, abs(best)), prices.tolist(),
                          best_rc.tolist(), iterations, time.perf_counter() - began)


def priced_order(model: LinearModel, reduced: list[float]) -> list[int]:
    """Variable indices for ``greedy_values(model, order=...)``: jobs by their best value per
    priced resource use, ``max c_i / (c_i - rc_i)`` over their placements (``c - rc = A'y`` is
    what the prices charge; a placement charged nothing is worth its whole value), and each
    job's placements by reduced cost (ties: objective, then index), best first.

    Of the orders tried (reduced cost alone, the ratio alone, per job by either) this one's
    greedy plan was the best or close to it on every instance tried (see the module doc).
    """
    rc = np.asarray(reduced, dtype=float)
    c = np.asarray(model.objective, dtype=float)
    use = c - rc
    charged = use > 1e-12
    ratio = np.where(charged, c / np.where(charged, use, 1.0), np.where(c > 0, np.inf, -np.inf))
    job = model.matrix().job_of
    best = np.full(len(c) + len(model.by_job), -np.inf)
    np.maximum.at(best, job, ratio)
    return np.lexsort((np.arange(len(c)), -c, -rc, -best[job])).tolist()
