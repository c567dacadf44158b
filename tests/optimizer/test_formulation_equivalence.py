"""The fast ``build`` against a slow reference written straight from the rule definitions.

``build`` groups placements into blocks, bisects sorted starts and vectorises the capacity and
cap rows; the reference here does none of that: it enumerates the placements by brute force and
recomputes every row by scanning all placements. The two must agree exactly: the same
placements in the same order, the same objective, and the same rows (kind, name, sense, rhs,
key, and the coefficient of each var) in the same order, implied rows left out the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings

from gpualloc.models import Ineligible, Instance, load_instance
from gpualloc.optimizer.model.formulation import LinearModel, Placement, Row, capacity_rows
from gpualloc.optimizer.model.formulation import build as _build
from tests.strategies import instances


def build(instance, stop=None):
    """The rules' rows as written: no presolve (that has its own tests, test_presolve)."""
    return _build(instance, stop, presolve=False)


PORTFOLIO = Path(__file__).resolve().parents[2] / "instances" / "portfolio.yaml"

RowContent = tuple[Any, ...]


def _placements(inst: Instance) -> tuple[list[Placement], list[Ineligible]]:
    """Every placement rules 2 and 3, eligibility and the pool size allow, in job, option,
    cluster and start order; and the options that eligibility bars."""
    out, barred = [], []
    for job in inst.jobs:
        deadline = inst.horizon.periods if job.deadline is None else job.deadline
        for k, option in enumerate(job.options):
            for cluster in inst.allowed_clusters(job):
                pool = cluster.pool(option.accelerator)
                if pool is None:
                    continue
                reason = inst.ineligibility(job, option.accelerator, cluster)
                if reason is not None:
                    barred.append(Ineligible(job=job.id, option=k, cluster=cluster.id,
                                             reason=reason))
                    continue
                if pool.max_gpus_per_job is not None and option.gpus > pool.max_gpus_per_job:
                    continue
                cost = option.gpus * option.periods * inst.horizon.period_hours \
                    * pool.price_per_gpu_hour
                for start in range(job.release, deadline - option.periods + 1):
                    if all(pool.gpus_at(t) >= option.gpus
                           for t in range(start, start + option.periods)):
                        out.append(Placement(job.id, k, cluster.id, option.accelerator,
                                             option.gpus, start, option.periods, cost,
                                             job.option_value(option)))
    return out, barred


def _row(kind: str, name: str, coefs: dict[int, float], sense: str, rhs: float,
         key: tuple[Any, ...] = ()) -> RowContent:
    return kind, name, coefs, sense, rhs, key


def _content(row: Row) -> RowContent:
    assert len(row.vars) == len(set(row.vars)) == len(row.coefs)
    return _row(row.kind, row.name, dict(zip(row.vars, row.coefs, strict=True)), row.sense,
                row.rhs, row.key)


def _capacity(inst: Instance, ps: list[Placement]) -> list[RowContent]:
    """Rule 4 per pool and period over the placements running then, unless no two jobs can
    meet there and every placement fits alone, or all of them together fit."""
    rows = []
    for cluster in inst.clusters:
        for pool in cluster.pools:
            for t in range(inst.horizon.periods):
                cap = pool.gpus_at(t)
                on = {i: float(p.gpus) for i, p in enumerate(ps) if p.cluster == cluster.id
                      and p.accelerator == pool.accelerator and p.start <= t < p.end}
                implied = len({ps[i].job for i in on}) == 1 and all(ps[i].gpus <= cap
                                                                    for i in on)
                if sum(on.values()) > cap and not implied:
                    rows.append(_row("capacity", f"capacity[{cluster.id},{pool.accelerator},{t}]",
                                     on, "<=", float(cap), (cluster.id, pool.accelerator, t)))
    return rows


def _reference(inst: Instance, ps: list[Placement]) -> list[RowContent]:
    jobs = inst.job_by_id
    of_job = {j.id: [i for i, p in enumerate(ps) if p.job == j.id] for j in inst.jobs}
    rows = []
    for job in inst.jobs:  # rule 1
        mine = dict.fromkeys(of_job[job.id], 1.0)
        if job.mandatory or len(mine) > 1:
            rows.append(_row("assign", f"assign[{job.id}]", mine,
                             "==" if job.mandatory else "<=", 1.0))
    rows += _capacity(inst, ps)
    for job in inst.jobs:  # rule 5: j started by t needs dep ended by t
        for dep in job.after:
            for t in sorted({ps[i].start for i in of_job[job.id]}):
                coefs = {i: 1.0 for i in of_job[job.id] if ps[i].start <= t}
                coefs |= {i: -1.0 for i in of_job[dep] if ps[i].end <= t}
                rows.append(_row("precedence", f"after[{job.id},{dep},{t}]", coefs, "<=", 0.0))
    for s in inst.startups:  # rule 6, unless even the costliest choice of every job fits
        if s.credits is None:
            continue
        own = [j for j in inst.jobs if j.startup == s.id]
        most = sum(max((ps[i].cost for i in of_job[j.id]), default=0.0) for j in own)
        if most > s.credits:
            rows.append(_row("credits", f"credits[{s.id}]",
                             {i: ps[i].cost for j in own for i in of_job[j.id]}, "<=",
                             s.credits))
    hours = inst.horizon.period_hours
    for cap in inst.caps:  # rule 7
        for window in cap.windows(inst.horizon.periods):
            label = f"{window.start}" if len(window) == 1 else f"{window.start}-{window[-1]}"
            use, base = {}, {}
            for i, p in enumerate(ps):
                run = len(set(window) & set(range(p.start, p.end)))
                amount = cap.per_period_use(p.gpus, inst.tpp(p.accelerator), hours) * run
                args = inst, jobs[p.job], inst.cluster_by_id[p.cluster], p.accelerator
                if amount > 0 and cap.matches(*args):
                    use[i] = amount
                if amount > 0 and cap.share_of is not None and cap.share_of.matches(*args):
                    base[i] = amount
            if cap.limit is not None and sum(use.values()) > cap.limit:
                rows.append(_row("cap", f"cap[{cap.id},{label}]", use, "<=", cap.limit))
            if cap.fraction is not None:
                net = {i: use.get(i, 0.0) - cap.fraction * base[i] if i in base else use[i]
                       for i in sorted(use.keys() | base.keys())}
                net = {i: c for i, c in net.items() if c != 0.0}
                if any(c > 0 for c in net.values()):
                    rows.append(_row("cap", f"share[{cap.id},{label}]", net, "<=", 0.0))
    return rows


def _check(inst: Instance) -> LinearModel:
    model = build(inst)
    ps, barred = _placements(inst)
    assert model.placements == ps
    assert model.ineligible == barred
    assert model.by_job == {j.id: [i for i, p in enumerate(ps) if p.job == j.id]
                            for j in inst.jobs}
    cw = inst.objective.cost_weight
    assert model.objective == [inst.startup_by_id[inst.job_by_id[p.job].startup].weight
                               * p.value - cw * p.cost for p in ps]
    mandatory = [j.id for j in inst.jobs if j.mandatory and not model.by_job[j.id]]
    assert len(model.infeasible) == len(mandatory)
    got = [_content(r) for r in model.rows]
    want = _reference(inst, ps)
    for kind in ("assign", "capacity", "precedence", "credits", "cap"):
        assert [r for r in got if r[0] == kind] == [r for r in want if r[0] == kind], kind
    assert got == want  # and the kinds in the same order
    return model


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(instances())
def test_build_matches_the_reference_on_random_instances(inst: Instance) -> None:
    _check(inst)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(instances(jobs=14, periods=9, caps=3, clusters=3))
def test_build_matches_the_reference_on_bigger_random_instances(inst: Instance) -> None:
    _check(inst)


def test_build_matches_the_reference_on_the_portfolio() -> None:
    inst = load_instance(PORTFOLIO)
    model = _check(inst)
    assert {r.kind for r in model.rows} == {"assign", "capacity", "precedence", "credits", "cap"}


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(instances(jobs=10))
def test_capacity_rows_of_any_placement_subset(inst: Instance) -> None:
    # capacity_rows also serves models that build did not make (explain's uncapped model,
    # re-planning): every third placement, in reverse order, against the instance's pools.
    ps = build(inst).placements[::-3]
    model = LinearModel(placements=ps)
    assert [_content(r) for r in capacity_rows(model, inst)] == _capacity(inst, ps)
