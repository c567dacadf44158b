"""The LNS incumbent and its neighbourhoods: which jobs to free, the sub-model over them with
every other variable fixed to the incumbent, and applying a better sub-solution. Row
activities and the variable-to-row map come from the model's shared matrix."""

from __future__ import annotations

import random

import numpy as np

from ..model.formulation import LinearModel, Row
from ..model.matrix import concat_ranges

SUPPORT_EPS = 1e-6  # LP values above this are the LP's support
SUPPORT_SHARE = 0.75  # share of neighbourhoods restricted to the LP's support once it is known


class Search:
    """The incumbent, row activities and the neighbourhood / sub-model machinery."""

    def __init__(self, model: LinearModel, values: list[float], lp: list[float] | None,
                 rng: random.Random, columns: list[int] | None = None) -> None:
        self.model = model
        self.values = values
        self.rng = rng
        self.mat = model.matrix()  # the shared variable-to-row map (col_ptr, col_rows, ...)
        self.activity = self.mat.activity(values)
        self.jobs = sorted(model.by_job)
        self.job_of = {j: k for k, j in enumerate(self.jobs)}
        self.size_of = [len(model.by_job[j]) for j in self.jobs]
        n = model.num_vars
        job_k = np.zeros(n, np.int64)
        for k, j in enumerate(self.jobs):
            job_k[model.by_job[j]] = k
        start = model.field("start")
        end = start + model.field("periods")
        cluster_names = [p.cluster for p in model.placements]
        self.clusters = sorted(set(cluster_names))
        number = {c: k for k, c in enumerate(self.clusters)}
        cluster_k = np.fromiter((number[c] for c in cluster_names), np.int64, n)
        # cluster -> job indices with a placement there; period -> job indices that can run
        self.groups = {c: np.unique(job_k[cluster_k == k]).tolist()
                       for c, k in number.items()}
        self.horizon = int(end.max()) if n else 1
        self.periods = {t: ks for t in range(self.horizon)
                        if (ks := np.unique(job_k[(start <= t) & (end > t)]).tolist())}
        # disagreement of LP and incumbent per job: where the LP wants something else
        self.disagree = [0.0] * len(self.jobs)
        # the LP's columns and support (or, before the LP, the placements the Lagrangian
        # prices best): placements a RINS-like neighbourhood may use, with the incumbent's
        self.support: list[bool] | None = None
        self.support_size = self.size_of
        if lp is not None or columns:
            support = np.zeros(n, dtype=bool)
            if lp is not None:
                lpv, now = np.asarray(lp), np.asarray(values)
                self.disagree = np.bincount(job_k, weights=np.abs(lpv - now),
                                            minlength=len(self.jobs)).tolist()
                support = lpv > SUPPORT_EPS
            if columns:
                support[np.asarray(columns, dtype=np.int64)] = True
            self.support = support.tolist()
            self.support_size = (1 + np.bincount(job_k, weights=support,
                                                 minlength=len(self.jobs))).astype(int).tolist()

    def neighbourhood(self, size: int) -> list[int]:
        """Free variable indices: all placements of a set of related jobs (about ``size``)."""
        rng = self.rng
        restrict = self.support is not None and rng.random() < SUPPORT_SHARE
        sizes = self.support_size if restrict else self.size_of
        kind = rng.choice(("window", "cluster", "random", "lp"))
        if kind == "window":
            t0 = rng.randrange(self.horizon)
            pool: list[int] = []
            seen: set[int] = set()
            for dt in range(self.horizon):
                for t in (t0 + dt, t0 - dt):
                    for k in sorted(self.periods.get(t, ())):
                        if k not in seen:
                            seen.add(k)
                            pool.append(k)
                if len(pool) > 4 * size:
                    break
            chosen = self._fill(pool, size, sizes, shuffle_block=True)
        elif kind == "cluster":
            order = list(self.clusters)
            rng.shuffle(order)
            pool = []
            seen = set()
            for c in order:
                block = [k for k in self.groups[c] if k not in seen]
                rng.shuffle(block)
                seen.update(block)
                pool.extend(block)
            chosen = self._fill(pool, size, sizes)
        elif kind == "lp" and any(self.disagree):
            weights = [d + 1e-3 for d in self.disagree]
            pool = sorted(range(len(self.jobs)),
                          key=lambda k: -weights[k] * rng.random())
            chosen = self._fill(pool, size, sizes)
        else:
            pool = list(range(len(self.jobs)))
            rng.shuffle(pool)
            chosen = self._fill(pool, size, sizes)
        free = [i for k in sorted(chosen) for i in self.model.by_job[self.jobs[k]]]
        if restrict:
            assert self.support is not None
            free = [i for i in free if self.support[i] or self.values[i] > 0.5]
        return free

    def _fill(self, pool: list[int], size: int, sizes: list[int],
              shuffle_block: bool = False) -> list[int]:
        if shuffle_block:  # keep locality but vary the members
            pool = [k for k in pool if self.rng.random() < 0.7] or pool
        chosen, total = [], 0
        for k in pool:
            if total >= size:
                break
            chosen.append(k)
            total += sizes[k]
        return chosen

    def sub_model(self, free: list[int]) -> LinearModel:
        """The model over ``free`` with every other variable fixed to the incumbent."""
        return restricted(self.model, self.values, self.activity, free)

    def adopt(self, values: list[float]) -> None:
        """Make ``values`` (a checked plan found elsewhere) the incumbent."""
        self.values = [1.0 if v > 0.5 else 0.0 for v in values]
        self.activity = self.mat.activity(self.values)

    def apply(self, free: list[int], sub_values: list[float]) -> None:
        mat = self.mat
        for n, v in enumerate(free):
            new = 1.0 if sub_values[n] > 0.5 else 0.0
            if new != self.values[v]:
                rows, coefs = mat.column(v)
                np.add.at(self.activity, rows, (new - self.values[v]) * coefs)
                self.values[v] = new


def restricted(model: LinearModel, values: list[float] | np.ndarray, activity: np.ndarray,
               free: list[int]) -> LinearModel:
    """The model over ``free`` with every other variable fixed to ``values`` (``activity``:
    the rows' activities at ``values``)."""
    mat = model.matrix()
    cols = np.asarray(free, dtype=np.int64)
    take = concat_ranges(mat.col_ptr, cols)
    local = np.repeat(np.arange(len(cols)), mat.col_ptr[cols + 1] - mat.col_ptr[cols])
    rows, coefs = mat.col_rows[take], mat.col_vals[take]
    on = np.asarray(values)[cols][local] > 0.5
    by_row = np.argsort(rows, kind="stable")
    rows, local, coefs, on = rows[by_row], local[by_row], coefs[by_row], on[by_row]
    cuts = np.flatnonzero(np.diff(rows)) + 1
    firsts = np.concatenate(([0], cuts)) if len(rows) else cuts
    fixed_part = np.add.reduceat(np.where(on, coefs, 0.0), firsts) if len(rows) else []
    positive = np.add.reduceat(np.maximum(coefs, 0.0), firsts) if len(rows) else []
    sub = LinearModel()
    sub.placements = [model.placements[v] for v in free]
    sub.objective = [model.objective[v] for v in free]
    for k, v in enumerate(free):
        sub.by_job.setdefault(model.placements[v].job, []).append(k)
    bounds = [*firsts.tolist(), len(rows)] if len(rows) else [0]
    local_l, coefs_l = local.tolist(), coefs.tolist()
    for g, r in enumerate(rows[firsts].tolist() if len(rows) else []):
        row = model.rows[r]
        a, b = bounds[g], bounds[g + 1]
        left = row.rhs - (activity[r] - fixed_part[g])
        if row.sense == "<=" and positive[g] <= left + 1e-9:
            continue  # can never bind
        sub.rows.append(Row(row.kind, row.name, local_l[a:b], coefs_l[a:b], row.sense,
                            _clean(float(left)), row.key))
    return sub


def _clean(x: float) -> float:
    """Round off float noise from the rhs arithmetic (keeps CP-SAT's scaling exact)."""
    r = round(x, 6)
    return r if abs(r - x) <= 1e-7 * max(1.0, abs(x)) else x
