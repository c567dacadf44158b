"""An integral Lagrangian bound: the shared rows priced, each start-up's own rows kept whole.

The LP relaxation (and the plain Lagrangian, which equals it at best) lets a start-up's credit
budget be spent on a fraction of a job. Where budgets bind, that is part of the gap: on a
daily instance of 300 jobs, 120 periods and 9 binding budgets the LP is 4,132.1 and this bound
4,116.8 (a plan of 4,115.1); on a tight wide one, 4,625.6 and 4,590.0. Here the rows shared
by the start-ups (pool capacity, caps, precedence, spend limits) are priced by ``prices``
(the LP's duals, or the Lagrangian's), and what is left splits by start-up: each group of jobs
linked by a ``KEPT`` row (credits, tranches, floor) is a small multiple-choice knapsack,
solved as a MIP by HiGHS, whose proven bound counts (so a sub-MIP stopped early still gives a
valid bound). For any prices of the right signs,

    bound = prices . rhs(priced rows) + sum over groups of max (c - A' prices) x,

is an upper bound of the model; at the LP's optimal duals it is never above the LP's (a group
counts at most its share of the plain Lagrangian at the same prices). Columns
are reduced first: of a job's columns with the same entries in the group's rows only the one of
best reduced value is kept, and a column of non-positive reduced value that cannot help any
row (``<=`` rows with non-negative entries, ``>=`` rows with non-positive) is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..model.formulation import LinearModel
from ..model.matrix import concat_ranges, linked_columns
from ..stop import Stop
from .lagrange import whole_assignment_row

KEPT = frozenset({"credits", "tranche", "floor"})  # rows kept whole in the groups
MIN_GROUP_SECONDS = 0.05  # each group's MIP gets at least this much of the budget


@dataclass(frozen=True)
class IntegralBound:
    """The bound (without ``objective_offset``; None when the prices were missing or a group
    is infeasible), its seconds, the number of groups solved as MIPs and of those proven."""

    bound: float | None
    seconds: float
    groups: int = 0
    proven: int = 0
    columns: int = 0


def integral_bound(model: LinearModel, prices, stop: Stop | None = None,
                   time_limit: float | None = None) -> IntegralBound:
    """The integral Lagrangian bound of ``model`` at ``prices`` (one per row; see the module
    doc), within ``time_limit`` seconds or ``stop``: a group whose MIP is cut short counts its
    proven bound, a group not reached its share of the plain Lagrangian at ``prices``."""
    began = time.perf_counter()
    mat = model.matrix()
    if prices is None or len(prices) != mat.m:
        return IntegralBound(None, 0.0)
    stop = (stop if stop is not None else Stop(None)).child(seconds=time_limit)
    kinds = [r.kind for r in model.rows]
    kept = np.fromiter((k in KEPT for k in kinds), bool, mat.m)
    assign = np.fromiter((k == "assign" for k in kinds), bool, mat.m)
    inner = kept | assign
    signed = mat.signed(np.asarray(prices, dtype=np.float64))
    y = np.where(inner, 0.0, signed)
    reduced = mat.reduced(y)
    # a group's fallback: its part of the plain Lagrangian, the kept rows priced too (at the
    # LP's duals the groups' fallbacks sum to the LP's bound)
    y_kept = np.where(kept, signed, 0.0)
    plain = reduced - (mat.cost - mat.reduced(y_kept))
    total = float(y @ mat.rhs)
    kind = _job_kinds(model)
    free = _job_values(mat, reduced, kind)  # each job alone: its best placement
    fallback = _job_values(mat, plain, kind)
    has_kept = np.bincount(mat.cols, weights=kept[mat.rows], minlength=mat.n) > 0
    todo: list[tuple[np.ndarray, float]] = []
    alone = np.ones(len(free), bool)  # jobs in no group of kept rows
    for cols in linked_columns(model, kept):
        if not len(cols) or not has_kept[cols].any():
            continue
        jobs = np.unique(mat.job_of[cols])
        alone[jobs] = False
        rows = np.unique(mat.col_rows[_entries(mat, cols)])
        todo.append((cols, float(y_kept[rows] @ mat.rhs[rows]) + float(fallback[jobs].sum())))
    total += float(free[alone].sum())
    proven = columns = 0
    for k, (cols, relaxed) in enumerate(todo):
        seconds = stop.remaining()
        share = None if seconds is None else max(MIN_GROUP_SECONDS, seconds / (len(todo) - k))
        value, exact, used = _group_bound(mat, cols, reduced, inner, stop, share, relaxed)
        if value is None:
            return IntegralBound(None, time.perf_counter() - began, len(todo), proven, columns)
        total += value
        proven += exact
        columns += used
    return IntegralBound(total + 1e-7 * max(1.0, abs(total)), time.perf_counter() - began,
                         len(todo), proven, columns)


def _entries(mat, cols: np.ndarray) -> np.ndarray:
    return concat_ranges(mat.col_ptr, np.asarray(cols, dtype=np.int64))


def _job_kinds(model: LinearModel) -> np.ndarray:
    """Per job number (``Matrix.job_of``), 1 when one of its rows is its whole "at most one"
    row, 2 when that row is "exactly one" (``lagrange``'s test), else 0; its other assignment
    rows are relaxed."""
    mat = model.matrix()
    sizes = [len(idx) for idx in model.by_job.values()]
    out = np.zeros(len(sizes) + mat.n, np.int8)
    for row in model.rows:
        if whole_assignment_row(row, mat.job_of, sizes):
            job = mat.job_of[row.vars[0]]
            out[job] = max(out[job], 1 if row.sense == "<=" else 2)
    return out


def _job_values(mat, reduced: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Per job number, the most its columns can add at ``reduced``: its best column (kind 2;
    kind 1: none when all are negative), or every positive one (kind 0: a relaxation)."""
    size = len(kind)
    best = np.full(size, -np.finfo(np.float64).max)
    np.maximum.at(best, mat.job_of, reduced)
    positive = np.bincount(mat.job_of, weights=np.maximum(reduced, 0.0), minlength=size)
    return np.where(kind == 2, best, np.where(kind == 1, np.maximum(best, 0.0), positive))


def _group_bound(mat, cols: np.ndarray, reduced: np.ndarray, inner: np.ndarray, stop: Stop,
                 seconds: float | None, relaxed: float) -> tuple[float | None, int, int]:
    """(bound, 1 if proven optimal, columns) of one group's MIP over its inner rows; the MIP's
    proven bound or ``relaxed`` (a bound of the group found otherwise), the smaller."""
    take = _entries(mat, cols)
    lengths = mat.col_ptr[cols + 1] - mat.col_ptr[cols]
    owner = np.repeat(np.arange(len(cols)), lengths)
    keep = inner[mat.col_rows[take]]
    owner, rows, vals = owner[keep], mat.col_rows[take][keep], mat.col_vals[take][keep]
    if stop.stopped:
        return relaxed, 0, 0
    sense = mat.sense[rows]
    helps = ~(((sense == 0) & (vals >= 0)) | ((sense == 1) & (vals <= 0)))
    useful = np.bincount(owner, weights=helps, minlength=len(cols)) > 0
    chosen = _distinct(cols, owner, rows, vals, reduced, mat.job_of)
    chosen &= useful | (reduced[cols] > 0)
    if not chosen.any():
        return 0.0, 1, 0
    value, exact = _solve_mip(mat, np.flatnonzero(chosen), owner, rows, vals,
                              reduced[cols], stop, seconds)
    if exact is None:  # the group's own rows cannot be met: no bound here
        return None, 0, int(chosen.sum())
    return (relaxed if value is None else min(value, relaxed)), int(exact), int(chosen.sum())


def _distinct(cols, owner, rows, vals, reduced, job_of) -> np.ndarray:
    """Per column, whether it is its job's best of the columns with its entries."""
    best: dict[tuple, tuple[float, int]] = {}
    starts = np.searchsorted(owner, np.arange(len(cols) + 1))
    rows_l, vals_l = rows.tolist(), vals.tolist()
    jobs, red = job_of[cols].tolist(), reduced[cols].tolist()
    for k in range(len(cols)):
        a, b = starts[k], starts[k + 1]
        key = (jobs[k], tuple(rows_l[a:b]), tuple(vals_l[a:b]))
        if key not in best or red[k] > best[key][0]:
            best[key] = (red[k], k)
    out = np.zeros(len(cols), bool)
    out[[k for _, k in best.values()]] = True
    return out


def _solve_mip(mat, chosen: np.ndarray, owner, rows, vals, reduced: np.ndarray, stop: Stop,
               seconds: float | None) -> tuple[float | None, bool | None]:
    """HiGHS on the chosen columns and their rows: (its proven bound or None, whether it is
    proven optimal), or ``(None, None)`` when the rows cannot be met."""
    import highspy

    from ..backends.mip import _swallow_highs_banner, highs_threads, stop_highs_on

    pick = np.isin(owner, chosen)
    col = np.searchsorted(chosen, owner[pick])
    row_ids, row = np.unique(rows[pick], return_inverse=True)
    order = np.lexsort((row, col))
    col, row, val = col[order], row[order], vals[pick][order]
    n = len(chosen)
    starts = np.searchsorted(col, np.arange(n))
    inf = highspy.kHighsInf
    sense, rhs = mat.sense[row_ids], mat.rhs[row_ids]
    _swallow_highs_banner()
    h = highspy.Highs()
    h.silent()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, len(row_ids)
    lp.col_cost_ = reduced[chosen]
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.row_lower_ = np.where(sense == 0, -inf, rhs)
    lp.row_upper_ = np.where(sense == 1, inf, rhs)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.r_[starts, len(col)].astype(np.int32)
    lp.a_matrix_.index_ = row.astype(np.int32)
    lp.a_matrix_.value_ = val
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    h.setOptionValue("mip_rel_gap", 1e-6)
    if seconds is not None:
        h.setOptionValue("time_limit", max(0.01, float(seconds)))
    stop_highs_on(h, stop)
    with highs_threads(h, 1):
        h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return None, None
    bound = float(h.getInfo().mip_dual_bound)
    known = bool(np.isfinite(bound)) and abs(bound) < inf
    return (bound if known else None), status == highspy.HighsModelStatus.kOptimal


__all__ = ["KEPT", "IntegralBound", "integral_bound"]
