"""The seven plan rules, derived once as a backend-neutral linear model (its data classes:
``linear``; rule 5's rows: ``precedence``).

Time-indexed formulation: one binary ``x[j, o, c, s]`` per job, option, cluster and start period
allowed by rules 2 and 3 and by eligibility. Every other rule is a linear row over these
binaries, so CP-SAT, CBC and HiGHS read the same model and must agree on its optimum.

- rule 1: ``sum x[j] <= 1`` (``== 1`` when mandatory);
- rule 4: per pool and period, ``sum gpus * x[running] <= capacity``;
- rule 5: per edge i -> j and start t of j, ``sum x[j, start <= t] <= sum x[i, end <= t]``
  (the strong time-indexed precedence: j starting by t needs i finished by t). These rows
  grow with the square of the starts; an edge whose rows would hold more than
  ``PRECEDENCE_FULL_TERMS`` terms keeps ``PRECEDENCE_ROWS`` of them (and those before i's
  first end) plus one order row, ``sum end * x[i] + sum (M - start) * x[j] <= M``: the same
  0/1 solutions, a weaker LP;
- rule 6: per start-up, ``sum cost * x <= credits``;
- rule 7: per cap and window, ``sum use * x <= limit`` (and ``<= fraction * share`` use);
- rule 6 with tranches: per start-up and window, ``sum spend in window * x <= limit``
  (carry-over: periods 0..t before each release against the credits released so far; without
  carry-over: each tranche's periods against that tranche), see ``_tranche_rows``;
- rule 8: per start-up with ``min_share``, ``sum value * x >= min_share * asked value``.

Big instances have ~10**6 vars, so each rule is gathered without rescanning every placement:
the placements of one job, option and cluster form a block of consecutive vars with rising
starts (bisected for precedence), and the capacity and cap rows are collected with numpy. The
rows equal the direct definitions (tests/optimizer/test_formulation_equivalence.py).
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, repeat

import numpy as np

from ...models import Cap, Cluster, Ineligible, Instance, Job, Pool, Scope
from ..stop import Stop, StopRequested
from .linear import Kind, LinearModel, Placement, Row, Sense
from .precedence import precedence_rows
from .presolve import drop_dead
from .rounding import rounding_rows


def build(instance: Instance, stop: Stop | None = None, presolve: bool = True,
          roundings: bool | None = None) -> LinearModel:
    """Derive the linear model of ``instance``. With ``stop``, a build that is stopped raises
    ``StopRequested`` (its detail: the placements made so far). ``presolve``: drop the
    placements no plan can use (``model.presolve``); off for a model whose rows are to be
    relaxed (infeasibility analysis). ``roundings`` (default: as ``presolve``): add the
    roundings of the pool rows (``model.rounding``), valid rows that tighten the LP."""
    roundings = presolve if roundings is None else roundings
    model = LinearModel()
    check = _checker(model, stop)
    with gc_paused():
        blocks = _add_placements(model, instance, check)
        check()
        _assignment_rows(model, instance)
        _capacity_rows(model, instance, check)
        check()
        precedence_rows(model, instance, blocks, check)
        _credit_rows(model, instance, blocks)
        check()
        _cap_rows(model, instance, blocks, check)
        check()
        _tranche_rows(model, instance, blocks)
        _floor_rows(model, instance)
        check()
        if roundings:
            model.rows.extend(rounding_rows(model, check))
        if presolve:
            drop_dead(model, stop, after={job.id: job.after for job in instance.jobs})
        model.matrix(stop)  # every consumer shares it: built here, under the same stop
    return model


def _checker(model: LinearModel, stop: Stop | None):
    """A function the build loops call: raises ``StopRequested`` once ``stop`` is stopped."""
    def check() -> None:
        if stop is not None and stop.stopped:
            raise StopRequested("building the model", stop.why() or "stop",
                                f"{model.num_vars:,} placements")
    return check


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cycle collector: a big model is millions of new lists and placements, none in
    a cycle, and collection passes over them would take a third of the build."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class _Block:
    """The placements of one job, option and cluster: vars ``first ..`` with rising starts."""

    first: int
    job: Job
    cluster: Cluster
    accelerator: str
    gpus: int
    periods: int
    cost: float
    starts: list[int]

    def upto(self, last_start: int) -> range:
        """The vars of the block starting at or before ``last_start``."""
        return range(self.first, self.first + bisect_right(self.starts, last_start))


_make = Placement._make  # tuple.__new__ straight from C: a third of the time of Placement(...)


def _add_placements(model: LinearModel, instance: Instance, check=lambda: None) -> list[_Block]:
    """Rules 2 and 3 and eligibility: one var per start that fits the pool in every period."""
    hours = instance.horizon.period_hours
    cost_weight = instance.objective.cost_weight
    startups = instance.startup_by_id
    last = max([instance.deadline(j) for j in instance.jobs], default=0)
    allowed: dict[tuple, list[Cluster]] = {}
    pools: dict[tuple[str, str], Pool | None] = {}
    reasons: dict[tuple[str, str, str], str | None] = {}
    short: dict[tuple[str, str, int], list[int]] = {}  # prefix counts of too-small periods
    blocks = []
    for n_job, job in enumerate(instance.jobs):
        if n_job % 64 == 0:
            check()
        deadline = instance.deadline(job)
        weight = startups[job.startup].weight
        idx = model.by_job.setdefault(job.id, [])
        key = (job.startup, job.clusters, job.regions)
        if key not in allowed:
            allowed[key] = instance.allowed_clusters(job)
        for k, option in enumerate(job.options):
            for cluster in allowed[key]:
                where = (cluster.id, option.accelerator)
                if where not in pools:
                    pools[where] = cluster.pool(option.accelerator)
                pool = pools[where]
                if pool is None:
                    continue
                barred = (job.startup, *where)
                if barred not in reasons:
                    reasons[barred] = instance.ineligibility(job, option.accelerator, cluster)
                if reasons[barred] is not None:
                    model.ineligible.append(Ineligible(job=job.id, option=k, cluster=cluster.id,
                                                       reason=reasons[barred]))
                    continue
                if pool.max_gpus_per_job is not None and option.gpus > pool.max_gpus_per_job:
                    continue
                fit = (*where, option.gpus)
                if fit not in short:
                    short[fit] = [0, *accumulate(pool.gpus_at(t) < option.gpus
                                                 for t in range(last))]
                prefix, n = short[fit], option.periods
                starts = [s for s in range(job.release, deadline - n + 1)
                          if prefix[s + n] == prefix[s]]  # can never fit the pool otherwise
                if not starts:
                    continue
                cost = option.gpus * n * hours * pool.price_per_gpu_hour
                value = job.option_value(option)
                first = model.num_vars
                blocks.append(_Block(first, job, cluster, option.accelerator, option.gpus, n,
                                     cost, starts))
                idx.extend(range(first, first + len(starts)))
                model.placements.extend(map(_make, zip(  # job, option, cluster, accelerator, ..
                    repeat(job.id), repeat(k), repeat(cluster.id), repeat(option.accelerator),
                    repeat(option.gpus), starts, repeat(n), repeat(cost), repeat(value))))
                model.objective.extend([weight * value - cost_weight * cost] * len(starts))
    return blocks


def _assignment_rows(model: LinearModel, instance: Instance) -> None:
    for job in instance.jobs:
        idx = model.by_job[job.id]
        if job.mandatory:
            if not idx:
                model.infeasible.append(f"mandatory job {job.id} has no placement that rules "
                                        "2, 3 and eligibility allow")
            model.rows.append(Row("assign", f"assign[{job.id}]", list(idx), [1.0] * len(idx),
                                  "==", 1.0))
        elif len(idx) > 1:
            model.rows.append(Row("assign", f"assign[{job.id}]", list(idx), [1.0] * len(idx),
                                  "<=", 1.0))


def _capacity_rows(model: LinearModel, instance: Instance, check=lambda: None) -> None:
    model.rows.extend(capacity_rows(model, instance, check))


def capacity_rows(model: LinearModel, instance: Instance, check=lambda: None) -> list[Row]:
    """Rule 4 rows of ``instance``'s pools over ``model``'s placements (implied rows left out)."""
    horizon = instance.horizon.periods
    number: dict[tuple[str, str], int] = {}
    for cluster in instance.clusters:
        for pool in cluster.pools:
            number.setdefault((cluster.id, pool.accelerator), len(number))
    placements = model.placements
    pool_of = np.array([number.get((p.cluster, p.accelerator), -1) for p in placements],
                       np.int64)
    start, periods, gpus = model.field("start"), model.field("periods"), model.field("gpus")
    # Cell pool * horizon + t: one entry per var and period it runs in, by cell and then var.
    first, stop = np.clip(start, 0, horizon), np.clip(start + periods, 0, horizon)
    period, var = _runs(first, np.where(pool_of >= 0, np.maximum(stop - first, 0), 0))
    cell = pool_of[var] * horizon + period
    cells = len(number) * horizon
    running = var[np.argsort(cell, kind="stable")]
    bounds = np.concatenate(([0], np.cumsum(np.bincount(cell, minlength=cells)))).tolist()
    # GPUs per cell; float sums of integers far below 2**53, so exact like sum(coefs) was.
    load = np.bincount(cell, weights=gpus[var], minlength=cells).tolist()
    coef = gpus.astype(np.float64)
    rows = []
    for cluster in instance.clusters:
        check()
        for pool in cluster.pools:
            k = number[(cluster.id, pool.accelerator)] * horizon
            for t in range(horizon):
                cap = pool.gpus_at(t)
                if load[k + t] <= cap:
                    continue
                idx = running[bounds[k + t]:bounds[k + t + 1]]
                if _at_most_one_fits(model, idx, cap):
                    continue
                rows.append(Row("capacity", f"capacity[{cluster.id},{pool.accelerator},{t}]",
                                idx, coef[idx], "<=", float(cap),
                                (cluster.id, pool.accelerator, t)))
    return rows


def _at_most_one_fits(model: LinearModel, idx: np.ndarray, cap: int) -> bool:
    """True when the row is implied: all vars belong to one job, each fitting on its own."""
    if not len(idx):
        return False
    placements = model.placements
    job = placements[idx[0]].job
    return all(placements[i].job == job and placements[i].gpus <= cap for i in idx.tolist())


def _credit_rows(model: LinearModel, instance: Instance, blocks: list[_Block]) -> None:
    spend: dict[str, list[int]] = defaultdict(list)
    jobs: dict[str, list[str]] = defaultdict(list)
    for job in instance.jobs:
        spend[job.startup].extend(model.by_job[job.id])
        jobs[job.startup].append(job.id)
    most: dict[str, float] = {}  # per job: its costliest placement
    for b in blocks:
        most[b.job.id] = max(most.get(b.job.id, b.cost), b.cost)
    for startup in instance.startups:
        if startup.credits is None:
            continue
        idx = spend.get(startup.id, [])
        if sum(most.get(j, 0.0) for j in jobs[startup.id]) <= startup.credits:
            continue
        model.rows.append(Row("credits", f"credits[{startup.id}]", idx,
                              [model.placements[i].cost for i in idx], "<=", startup.credits))


def _cap_rows(model: LinearModel, instance: Instance, blocks: list[_Block],
              check=lambda: None) -> None:
    horizon = instance.horizon.periods
    start = model.field("start")
    end = start + model.field("periods")
    for cap in instance.caps:
        inside = _Uses(instance, cap, cap, blocks, start, end)
        share = None if cap.share_of is None else _Uses(instance, cap, cap.share_of, blocks,
                                                        start, end)
        for window in cap.windows(horizon):
            check()
            label = f"{window.start}" if len(window) == 1 else f"{window.start}-{window[-1]}"
            terms = inside.terms(window)
            if cap.limit is not None and sum(terms.values()) > cap.limit:
                model.rows.append(Row("cap", f"cap[{cap.id},{label}]", list(terms),
                                      list(terms.values()), "<=", cap.limit))
            if share is not None:
                assert cap.fraction is not None
                combined = dict(terms)
                for i, c in share.terms(window).items():
                    combined[i] = combined.get(i, 0.0) - cap.fraction * c
                combined = {i: c for i, c in combined.items() if c != 0.0}
                if any(c > 0 for c in combined.values()):
                    model.rows.append(Row("cap", f"share[{cap.id},{label}]", list(combined),
                                          list(combined.values()), "<=", 0.0))


class _Uses:
    """The vars in ``scope`` with a positive per-period use under ``cap``'s metric: arrays of
    var, start, end and use, in var order."""

    def __init__(self, instance: Instance, cap: Cap, scope: Scope, blocks: list[_Block],
                 start: np.ndarray, end: np.ndarray) -> None:
        hours = instance.horizon.period_hours
        uses: dict[tuple[str, str, str, int], float] = {}  # 0.0: out of scope
        chosen: list[_Block] = []
        chosen_use: list[float] = []
        for b in blocks:
            key = (b.job.startup, b.cluster.id, b.accelerator, b.gpus)
            if key not in uses:
                use = cap.per_period_use(b.gpus, instance.tpp(b.accelerator), hours)
                inside = use > 0 and scope.matches(instance, b.job, b.cluster, b.accelerator)
                uses[key] = use if inside else 0.0
            if uses[key] > 0:
                chosen.append(b)
                chosen_use.append(uses[key])
        self.var, k = _runs(np.array([b.first for b in chosen], np.int64),
                            np.array([len(b.starts) for b in chosen], np.int64))
        self.start, self.end = start[self.var], end[self.var]
        self.use = np.array(chosen_use, np.float64)[k]

    def terms(self, window: range) -> dict[int, float]:
        """Per var: per-period use times the number of its running periods inside the window."""
        overlap = np.minimum(self.end, window.stop) - np.maximum(self.start, window.start)
        hit = np.flatnonzero(overlap > 0)
        return dict(zip(self.var[hit].tolist(), (self.use[hit] * overlap[hit]).tolist(),
                        strict=True))


def _runs(first: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated ranges ``first[k] .. first[k] + length[k] - 1``, and each entry's k."""
    k = np.repeat(np.arange(len(length)), length)
    return first[k] + np.arange(len(k)) - (np.cumsum(length) - length)[k], k


# -- credit tranches and fairness floors (DESIGN.md "Credit tranches", rule 8) -------------
def _tranche_rows(model: LinearModel, instance: Instance, blocks: list[_Block]) -> None:
    """Rule 6 with tranches, one row per credit window a plan could overflow.

    Carry-over: the cumulative spend of periods ``0..t`` is at most the credits released by
    ``t``; the release only grows at a tranche's ``from``, so the rows at ``t = from - 1`` of
    each later tranche (and before the first) imply every other ``t``; ``t`` = the last
    period is the start-up's credits row. Without carry-over: the spend of each tranche's
    periods (before the first tranche: nothing) is at most that tranche's credits.
    """
    horizon = instance.horizon.periods
    hours = instance.horizon.period_hours
    mine: dict[str, list[_Block]] = defaultdict(list)
    for b in blocks:
        mine[b.job.startup].append(b)
    for startup in instance.startups:
        if not startup.tranches or startup.credits is None or not mine[startup.id]:
            continue
        chosen = mine[startup.id]
        var, k = _runs(np.array([b.first for b in chosen], np.int64),
                       np.array([len(b.starts) for b in chosen], np.int64))
        start = np.array([s for b in chosen for s in b.starts], np.int64)
        end = start + np.array([b.periods for b in chosen], np.int64)[k]
        price = [pool.price_per_gpu_hour if (pool := b.cluster.pool(b.accelerator)) else 0.0
                 for b in chosen]
        per_period = np.array([b.gpus * hours * p for b, p in zip(chosen, price,
                                                                  strict=True)])[k]
        block_of = np.arange(len(chosen), dtype=np.int64)[k]
        froms = [t.from_ for t in startup.tranches]
        windows: list[tuple[int, int, float]] = []  # first, stop, limit
        if startup.carry_over:
            for f in ([froms[0]] if froms[0] > 0 else []) + froms[1:]:
                windows.append((0, f, math.fsum(t.credits for t in startup.tranches
                                                if t.from_ < f)))
        else:
            if froms[0] > 0:
                windows.append((0, froms[0], 0.0))
            for n, t in enumerate(startup.tranches):
                windows.append((t.from_, froms[n + 1] if n + 1 < len(froms) else horizon,
                                t.credits))
        for first, stop, limit in windows:
            if first == 0 and stop >= horizon:
                continue  # the whole horizon: the start-up's credits row
            overlap = np.minimum(end, stop) - np.maximum(start, first)
            hit = np.flatnonzero(overlap > 0)
            if not len(hit):
                continue
            coefs = per_period[hit] * overlap[hit]
            if _implied(chosen, block_of[hit], coefs, limit):
                continue
            model.rows.append(Row("tranche", f"tranche[{startup.id},{first}-{stop - 1}]",
                                  var[hit], coefs, "<=", limit,
                                  (startup.id, first, stop - 1)))


def _implied(chosen: list[_Block], block: np.ndarray, coefs: np.ndarray, limit: float) -> bool:
    """Whether every job at its costliest term still fits ``limit`` (the row cannot bind)."""
    most: dict[str, float] = {}
    for b, c in zip(block.tolist(), coefs.tolist(), strict=True):
        job = chosen[b].job.id
        most[job] = max(most.get(job, 0.0), c)
    return math.fsum(most.values()) <= limit


def _floor_rows(model: LinearModel, instance: Instance) -> None:
    """Rule 8 for every ``min_share``; a floor that even every job of the start-up at its
    best placement cannot reach makes the model infeasible before solving."""
    rows = floor_rows(model, instance, {s.id: s.min_share for s in instance.startups
                                        if s.min_share is not None})
    model.rows.extend(rows)
    for row in rows:
        best: dict[str, float] = {}
        for v, c in zip(row.vars, row.coefs, strict=True):
            job = model.placements[v].job
            best[job] = max(best.get(job, 0.0), c)
        most = math.fsum(best.values())
        if most < row.rhs - 1e-9 * max(1.0, row.rhs):
            sid = row.key[0]
            model.infeasible.append(
                f"{row.name}: min_share of {sid} needs value {row.rhs:.6g} but its jobs that "
                f"can be placed are worth at most {most:.6g}")


def floor_rows(model: LinearModel, instance: Instance, levels: dict[str, float]) -> list[Row]:
    """Rule 8 rows: per start-up in ``levels`` with a positive asked value, its scheduled
    option values (unweighted) at least ``level * asked value``."""
    by_startup: dict[str, list[int]] = defaultdict(list)
    for job in instance.jobs:
        by_startup[job.startup].extend(model.by_job.get(job.id, ()))
    rows = []
    for startup in instance.startups:
        asked = instance.asked_value[startup.id]
        level = levels.get(startup.id)
        if level is None or asked <= 0 or level <= 0:
            continue
        idx = by_startup[startup.id]
        rows.append(Row("floor", f"floor[{startup.id}]", list(idx),
                        [model.placements[i].value for i in idx], ">=", level * asked,
                        (startup.id,)))
    return rows


__all__ = ["Kind", "LinearModel", "Placement", "Row", "Sense", "build", "capacity_rows",
           "floor_rows", "gc_paused"]
