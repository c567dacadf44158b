"""The LP relaxation of the neutral model, by column generation with HiGHS, and its bound.

A time-indexed model has a binary per job, option, cluster and start, but its LP optimum uses
few of them. Column generation solves the LP over a restricted set of columns (the warm
start's placements and each job's two densest), prices every other column with the duals
(reduced cost ``c - A'y``, vectorised) and adds the most profitable ones, re-optimising with
warm-started dual simplex, until no column prices out. On the large tier (131,745 columns,
1.36M nonzeros) it reaches the LP optimum in about 25 s with ~30k columns, where dual simplex
on the whole LP took 100 s and the interior-point method 50-70 s.

The bound reported is the Lagrangian value ``y.b + sum max(0, c - A'y)`` of the duals ``y``
of each restricted LP (projected onto their valid signs), minimised over the iterations. It
is an upper bound for *any* such ``y``, so it is proven without trusting the solver's
tolerances, it is valid when the generation is stopped early, and it equals the LP optimum
when no column prices out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.greedy import density
from ..model.formulation import LinearModel
from .lagrange import concat_ranges

PRICE_EPS = 1e-9  # reduced costs above this (relative to the objective's scale) price out


@dataclass
class LpBound:
    """The LP relaxation's outcome: a proven bound (or None) and its primal values.

    ``columns`` are the columns the generation used (the restricted LP's); ``objective`` is
    the restricted LP's value, the LP optimum when ``status`` is ``optimal``.
    """

    bound: float | None
    values: list[float] | None
    seconds: float
    status: str
    objective: float | None = None
    columns: list[int] | None = None
    iterations: int = 0


class _Matrix:
    """The rows of a model as numpy arrays, row- and column-wise."""

    def __init__(self, model: LinearModel) -> None:
        import numpy as np

        n, m = model.num_vars, len(model.rows)
        lengths = np.fromiter((len(r.vars) for r in model.rows), dtype=np.int64, count=m)
        nnz = int(lengths.sum())
        self.rows = np.repeat(np.arange(m), lengths)
        self.cols = np.fromiter((v for r in model.rows for v in r.vars), np.int64, nnz)
        self.vals = np.fromiter((c for r in model.rows for c in r.coefs), float, nnz)
        order = np.argsort(self.cols, kind="stable")
        self.col_rows = self.rows[order].astype(np.int32)
        self.col_vals = self.vals[order]
        self.col_start = np.searchsorted(self.cols[order], np.arange(n + 1))
        self.cost = np.asarray(model.objective, dtype=float)
        self.sense = np.fromiter(({"<=": 0, ">=": 1, "==": 2}[r.sense] for r in model.rows),
                                 np.int8, m)
        self.rhs = np.fromiter((r.rhs for r in model.rows), float, m)
        self.n = n

    def lagrangian(self, dual, used) -> tuple[float, object]:
        """The Lagrangian bound of the duals and the reduced costs to price columns with.

        HiGHS's sign convention for the duals of a maximisation is settled by the data: of
        ``dual`` and ``-dual`` (each projected onto the valid signs, so each gives a valid
        bound), the one whose Lagrangian over the ``used`` columns is smaller is the one that
        prices the restricted LP correctly (it equals its optimum). The bound returned is the
        smaller of the two full Lagrangians; the reduced costs are those of the right sign.
        """
        import numpy as np

        out = []
        for sign in (1.0, -1.0):
            y = sign * np.asarray(dual, dtype=float)
            y = np.where(self.sense == 0, np.maximum(y, 0.0),
                         np.where(self.sense == 1, np.minimum(y, 0.0), y))
            reduced = self.cost - np.bincount(self.cols, weights=self.vals * y[self.rows],
                                              minlength=self.n)
            base = float(y @ self.rhs)
            positive = np.maximum(reduced, 0.0)
            full = base + float(positive.sum())
            restricted = base + float(positive[used].sum())
            out.append((restricted, full + 1e-9 * max(1.0, abs(full)), reduced))
        right = min(out, key=lambda t: t[0])
        return min(t[1] for t in out), right[2]

    def column_entries(self, cols: Sequence[int]):
        """(starts, row indices, values) of ``cols`` for ``Highs.addCols``."""
        import numpy as np

        cols = np.asarray(cols, dtype=np.int64)
        lengths = self.col_start[cols + 1] - self.col_start[cols]
        starts = np.zeros(len(cols), dtype=np.int32)
        np.cumsum(lengths[:-1], out=starts[1:])
        take = concat_ranges(self.col_start, cols)
        return starts, self.col_rows[take], self.col_vals[take]


class LpRun:
    """One LP solve that another thread may cancel (``cancel`` is thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._highs = None
        self._cancelled = False
        self.bound: float | None = None  # the best bound so far, readable while it runs

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._highs is not None:
                self._highs.cancelSolve()

    def solve(self, model: LinearModel, time_limit: float | None = None,
              start: list[float] | None = None) -> LpBound:
        """The LP relaxation of ``model`` by column generation (bounds without the model's
        ``objective_offset``); ``start`` (a 0/1 vector) seeds the columns."""
        began = time.perf_counter()
        try:
            import highspy
            import numpy as np
        except ImportError:
            return LpBound(None, None, 0.0, "unavailable")
        from ..backends.mip import _swallow_highs_banner, highs_threads

        if model.num_vars == 0:
            return LpBound(0.0, [], 0.0, "optimal", 0.0, [])
        mat = _Matrix(model)
        inf = highspy.kHighsInf
        _swallow_highs_banner()  # the library never prints
        h = highspy.Highs()
        h.silent()
        h.setOptionValue("solver", "simplex")
        h.HandleUserInterrupt = True
        lower = np.where(mat.sense == 0, -inf, mat.rhs)
        upper = np.where(mat.sense == 1, inf, mat.rhs)
        h.addRows(len(mat.rhs), lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        used = np.zeros(mat.n, dtype=bool)
        order: list[int] = []  # HiGHS's columns, in the order they were added

        def add(cols) -> None:
            cols = np.asarray(sorted(cols), dtype=np.int64)
            starts, index, value = mat.column_entries(cols)
            h.addCols(len(cols), mat.cost[cols], np.zeros(len(cols)), np.ones(len(cols)),
                      len(index), starts, index, value)
            used[cols] = True
            order.extend(cols.tolist())

        add(_initial_columns(model, start))
        batch = max(1000, min(20_000, mat.n // 16))
        scale = max(1.0, float(np.abs(mat.cost).max()))
        bound = None
        status = "stopped"
        objective = None
        iterations = 0
        with self._lock:
            self._highs = h
        try:
            while True:
                left = None if time_limit is None else time_limit - (time.perf_counter() - began)
                if (left is not None and left <= 0.05) or self._cancelled:
                    status = "time limit" if not self._cancelled else "cancelled"
                    break
                if left is not None:  # HiGHS's clock runs on across the runs of one Highs
                    h.setOptionValue("time_limit", h.getRunTime() + left)
                with highs_threads(h, 1):  # dual simplex runs serial
                    h.run()
                iterations += 1
                model_status = h.getModelStatus()
                if model_status == highspy.HighsModelStatus.kInfeasible:
                    if used.all():
                        status = "infeasible"
                        break
                    add(np.flatnonzero(~used))  # the restricted LP misses columns: take all
                    continue
                if model_status != highspy.HighsModelStatus.kOptimal:
                    status = h.modelStatusToString(model_status)
                    break
                objective = h.getInfo().objective_function_value
                value, reduced = mat.lagrangian(h.getSolution().row_dual, used)
                bound = value if bound is None else min(bound, value)
                self.bound = bound
                prices_out = np.flatnonzero((reduced > PRICE_EPS * scale) & ~used)
                if len(prices_out) == 0:
                    status = "optimal"
                    bound = min(bound, objective + 1e-6 * max(1.0, abs(objective)))
                    break
                best = prices_out[np.argsort(-reduced[prices_out], kind="stable")[:batch]]
                add(best)
        finally:
            with self._lock:
                self._highs = None
        values = None
        solution = h.getSolution()
        if solution.value_valid and status != "infeasible":
            full = np.zeros(mat.n)
            full[np.asarray(order, dtype=np.int64)] = np.clip(solution.col_value, 0.0, 1.0)
            values = full.tolist()
        return LpBound(bound, values, time.perf_counter() - began, status, objective,
                       sorted(order), iterations)


def _initial_columns(model: LinearModel, start: list[float] | None) -> set[int]:
    """The warm start's placements and each job's two densest (value per GPU-period)."""
    cols = {i for i, v in enumerate(start or ()) if v > 0.5}
    for idx in model.by_job.values():
        cols.update(sorted(idx, key=lambda i: (-density(model, i), i))[:2])
    return cols


def lp_relaxation(model: LinearModel, time_limit: float | None = None,
                  start: list[float] | None = None) -> LpBound:
    """Solve the LP relaxation of ``model`` (see the module doc)."""
    return LpRun().solve(model, time_limit, start)
