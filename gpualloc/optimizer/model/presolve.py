"""Placements that no plan can use, dropped from a built model.

A placement whose entry in some ``<=`` row exceeds the row's rhs even when every other entry
of the row is at its least (``sum of min(0, coef)`` over the others) can never be 1: a job of
512 H800 on a per-period cap of 5.6M TPP (8.1M alone), a job dearer than its start-up's
credits, a job that starts before any of its predecessor's placements can end. The LP
relaxation runs such placements at a fraction, which is most of its gap where caps bind (a
daily instance of 300 jobs and 120 periods: LP 4,552.4 with them, 4,128.1 without, optimum
4,112 or more). Dropping one can make others dead (a predecessor's start gone), so it repeats
until none is left. ``unaffordable`` adds the jobs that a budget row (credits, a tranche's
or a cap's window) cannot hold together with their dependencies and the forced jobs, each at
its least entry (a job needing a dependency the credits cannot pay for too). Nothing else about
the model changes: every row keeps its place, only dead columns leave it, and the
placements, objective and ``by_job`` are renumbered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from graphlib import TopologicalSorter

import numpy as np

from ..stop import Stop
from .linear import float_array, int_array
from .matrix import concat_ranges

MAX_ROUNDS = 20  # chains of precedence longer than this keep their last dead starts
TOLERANCE = 1e-9  # relative slack on the rhs: the validator's is 1e-6, looser
CHUNK_ROWS = 2000  # rows renumbered at a time


def overflows(mat, alive: np.ndarray | None = None, every: bool = False,
              entries: np.ndarray | None = None) -> np.ndarray:
    """Per matrix entry (of ``entries``, all when None), whether its column alone overflows
    its ``<=`` (or ``==``) row while the other columns in ``alive`` (all when None) are at
    their least; only the entries of columns in ``alive`` unless ``every``."""
    alive = np.ones(mat.n, bool) if alive is None else alive
    rows, cols, vals = (mat.rows, mat.cols, mat.vals) if entries is None else \
        (mat.rows[entries], mat.cols[entries], mat.vals[entries])
    live = alive[cols]
    least = np.bincount(rows, weights=np.where(live, np.minimum(vals, 0.0), 0.0),
                        minlength=mat.m)
    upper = mat.sense[rows] != 1  # <= and == rows bound the activity from above
    rhs = mat.rhs[rows]
    over = upper & (vals > 0) & \
        (vals + least[rows] > rhs + TOLERANCE * np.maximum(1.0, np.abs(rhs)))
    return over if every else over & live


def dead_columns(mat, alive: np.ndarray | None = None,
                 entries: np.ndarray | None = None) -> np.ndarray:
    """Per column, whether it overflows a row alone (``overflows``)."""
    dead = np.zeros(mat.n, bool)
    cols = mat.cols if entries is None else mat.cols[entries]
    dead[cols[overflows(mat, alive, entries=entries)]] = True
    return dead


def drop_dead(model, stop: Stop | None = None,
              after: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
    """Drop the placements no plan can use (see the module doc) from ``model`` in place and
    count them in ``model.dropped``; a mandatory job left without any, or a row left empty
    that 0 breaks, goes into ``model.infeasible``. With ``after`` (each job's dependencies)
    also the jobs that their start-ups cannot afford (``unaffordable``). Returns which of the
    columns before are kept (a mask)."""
    mat = model.matrix(stop)
    alive = ~dead_columns(mat)
    if after:
        alive &= ~unaffordable(model, mat, alive, after)
    if alive.all():
        return alive
    # later rounds: only the rows where a column just dropped had a negative entry can gain
    # dead columns (their least activity rises: precedence rows)
    new = ~alive
    for _ in range(MAX_ROUNDS - 1):
        take = concat_ranges(mat.col_ptr, np.flatnonzero(new))
        rows = np.unique(mat.col_rows[take][mat.col_vals[take] < 0])
        if not len(rows):
            break
        new = dead_columns(mat, alive, concat_ranges(mat.row_ptr, rows)) & alive
        if not new.any():
            break
        alive &= ~new
    count = int(mat.n - alive.sum())
    _mandatory_lost(model, mat, alive)
    _compact(model, mat, alive)
    model.dropped += count
    return alive


BUDGETS = ("credits", "tranche", "cap")  # the rows ``unaffordable`` reads (no negative entry)


def unaffordable(model, mat, alive: np.ndarray, after: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Per column, whether its job can never run because a budget row (credits, a tranche's
    window, a cap's window: ``BUDGETS``) cannot hold it together with its dependencies
    (transitively: rule 5 runs them all) and every job that must run (forced jobs and their
    dependencies), each at its least entry in the row over its placements in ``alive`` (0
    when one of them is not in the row); a job with a dependency left without any placement
    can never run either. The jobs that must run alone over a row make the model infeasible
    (``model.infeasible``)."""
    jobs = list(model.by_job)
    index = {j: n for n, j in enumerate(jobs)}
    job_of = mat.job_of  # ``by_job`` order
    placed = np.bincount(job_of[alive], minlength=max(len(jobs), int(job_of.max(initial=-1)) + 1))
    uses = _least_uses(model, mat, alive, job_of, placed)
    closure = _closures(jobs, after)
    must = set().union(*(closure[j] for j in model.forced_jobs() if j in closure))
    base: dict[int, float] = defaultdict(float)
    for j in must:
        for k, v in uses.get(index[j], ()):
            base[k] += v
    rows = model.rows

    def over(k: int, spend: float) -> bool:
        return spend > rows[k].rhs + TOLERANCE * max(1.0, abs(rows[k].rhs))

    for k, spend in base.items():
        if over(k, spend):
            model.infeasible.append(f"{rows[k].name}: the jobs that must run (mandatory ones "
                                    f"and their dependencies) use at least {spend:,.2f} > "
                                    f"{rows[k].rhs:,.2f}")
    poor = np.zeros(len(placed), bool)
    for j, group in closure.items():
        if j in must:
            continue
        extra: dict[int, float] = defaultdict(float)
        for d in group - must:
            n = index.get(d)
            if n is None or not placed[n]:  # a dependency that can never run
                poor[index[j]] = True
                break
            for k, v in uses.get(n, ()):
                extra[k] += v
        poor[index[j]] |= any(over(k, base[k] + v) for k, v in extra.items())
    return poor[job_of] & alive


def _least_uses(model, mat, alive: np.ndarray, job_of: np.ndarray,
                placed: np.ndarray) -> dict[int, list[tuple[int, float]]]:
    """Per job (its index), ``(row, least entry)`` for each budget row holding every one of its
    placements in ``alive`` with a positive least entry."""
    budget = np.flatnonzero(np.fromiter(
        (r.kind in BUDGETS and r.sense == "<=" for r in model.rows), bool, mat.m))
    take = concat_ranges(mat.row_ptr, budget)
    negative = np.zeros(mat.m, bool)
    negative[mat.rows[take][mat.vals[take] < 0]] = True  # a share cap's row: not a budget
    take = take[alive[mat.cols[take]] & ~negative[mat.rows[take]]]
    if not len(take):
        return {}
    key = mat.rows[take] * len(placed) + job_of[mat.cols[take]]
    keys, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
    low = np.full(len(keys), np.inf)
    np.minimum.at(low, inverse, mat.vals[take])
    row, job = np.divmod(keys, len(placed))
    whole = (count == placed[job]) & (low > 0)  # every placement left in the row
    out: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for k, n, v in zip(row[whole].tolist(), job[whole].tolist(), low[whole].tolist(),
                       strict=True):
        out[n].append((k, v))
    return out


def _closures(jobs: Sequence[str], after: Mapping[str, Sequence[str]]) -> dict[str, frozenset]:
    """Each job with its dependencies, transitively (``after`` has no cycles)."""
    out: dict[str, frozenset] = {}
    for j in TopologicalSorter({j: list(after.get(j, ())) for j in jobs}).static_order():
        out[j] = frozenset({j}).union(*(out[d] for d in after.get(j, ()) if d in out))
    return {j: out[j] for j in jobs}


def _mandatory_lost(model, mat, alive: np.ndarray) -> None:
    """Each mandatory job whose every placement is dead, with a row that bars one of them."""
    forced = model.forced_jobs()
    lost = [job for job in forced if model.by_job[job] and not alive[model.by_job[job]].any()]
    if not lost:
        return
    # against the columns left, each dead column still overflows the row that barred it
    # (fewer columns at their least only raise a row's least activity)
    over = overflows(mat, alive, every=True)
    why: dict[int, int] = {}
    for r, v in zip(mat.rows[over].tolist(), mat.cols[over].tolist(), strict=True):
        why.setdefault(v, r)
    for job in lost:
        row = next((why[v] for v in model.by_job[job] if v in why), None)
        label = "a row" if row is None else _label(model.rows[row].name)
        model.infeasible.append(f"mandatory job {job}: each of its placements alone "
                                f"exceeds {label}")


def _label(name: str) -> str:
    """A row's family by name: ``cap[cn,3]`` -> ``cap[cn]``, ``after[j,d,4]`` -> ``after[j]``."""
    head, _, rest = name.partition("[")
    return f"{head}[{rest.split(',')[0].rstrip(']')}]" if rest else head


def _compact(model, mat, alive: np.ndarray) -> None:
    """Renumber ``model`` without the columns not ``alive``: rows in chunks, so that the new
    arrays replace the old ones as they are made; a row that loses no entry keeps its
    coefficients."""
    remap = np.cumsum(alive) - 1
    keep = alive[mat.cols]
    ptr = np.zeros(mat.m + 1, np.int64)
    np.cumsum(np.bincount(mat.rows[keep], minlength=mat.m), out=ptr[1:])
    kept = np.flatnonzero(keep)
    was = np.diff(mat.row_ptr)
    lost = (was != np.diff(ptr)).tolist()
    was_l = was.tolist()
    for lo in range(0, mat.m, CHUNK_ROWS):
        hi = min(mat.m, lo + CHUNK_ROWS)
        take = kept[ptr[lo]:ptr[hi]]
        cols = remap[mat.cols[take]].astype(np.int32)
        bounds = (ptr[lo:hi + 1] - ptr[lo]).tolist()
        for k in range(lo, hi):
            row = model.rows[k]
            a, b = bounds[k - lo], bounds[k - lo + 1]
            row.vars = int_array(cols[a:b])
            if not lost[k]:
                continue
            row.coefs = float_array(mat.vals[take[a:b]])
            if a == b and was_l[k] and not row.holds_at_zero():
                model.infeasible.append(f"{row.name} cannot hold: every placement in it is "
                                        "one that no plan can use")
    keep_idx = np.flatnonzero(alive).tolist()
    model.placements = [model.placements[i] for i in keep_idx]
    model.objective = [model.objective[i] for i in keep_idx]
    remap_l, alive_l = remap.tolist(), alive.tolist()
    for job, idx in model.by_job.items():
        model.by_job[job] = [remap_l[i] for i in idx if alive_l[i]]
    mat.keep_columns(alive, model)  # the model's matrix again, from the arrays


__all__ = ["dead_columns", "drop_dead"]
