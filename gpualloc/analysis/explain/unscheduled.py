"""Why each unscheduled job of a feasible plan is out of it.

Every unscheduled job gets a reason: ``ineligible`` (export rules bar every pool that could run
it), ``no_fit`` (no option fits its window on a pool that can run it), ``predecessor`` (a job
it comes after cannot run, or the chain cannot end by its deadline), or, from a re-solve with
the job forced in (warm-started from the plan, short time limit): ``displaces`` (running it
costs ``displaced`` objective value; ``blocking`` names the pools/periods, caps and credits its
forced placement would overflow in the base plan, ``binding`` those tight in the forced plan,
``displaced_jobs`` the jobs that make room), ``blocked`` (it cannot run at all without breaking
a mandatory job or a hard limit; ``blocking`` names them, from the elastic model) or
``addable`` (forcing it in costs nothing: a time-limited plan left value on the table). Only
the ``max_jobs`` most valuable unscheduled jobs are forced (``not_evaluated`` for the rest);
``time_limited`` marks reasons that come from a solve stopped by its time limit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import networkx as nx

from ...models import Assignment, Instance, Job, Plan, SolveStatus
from ...models.metrics import plan_metrics
from ...models.rules import tranche_text
from ...optimizer.backends import Backend, SolveParams
from ...optimizer.model.formulation import LinearModel, Row, build
from .chains import _graph, _Timing, _timing
from .elastic import _elastic, _parse, _relax, _span
from .explanation import _TOL, Explanation, JobReason, ReasonKind, _num, _ranges


def _best_value(instance: Instance, job: Job) -> float:
    weight = instance.startup_by_id[job.startup].weight
    return weight * max((job.option_value(o) for o in job.options), default=0.0)


def _explain_feasible(instance: Instance, plan: Plan, engine: Backend, max_jobs: int,
                      job_time_limit: float, seed: int) -> Explanation:
    ex = Explanation(instance=instance.name, feasible=True, plan=plan)
    model = build(instance, presolve=False)  # a job forced in shows what blocks it
    graph = _graph(instance)
    timing = _timing(instance, graph)
    base_values = model.encode(list(plan.assignments))
    base_obj = model.objective_value(base_values)
    if model.check(base_values) or len([a for a in plan.assignments
                                        if a.job in instance.job_by_id]) != \
            int(sum(base_values)):
        ex.notes.append("the plan does not fit this instance's model exactly; reasons are "
                        "relative to the part of it that does")
    base_limited = plan.status != SolveStatus.OPTIMAL
    if base_limited:
        ex.notes.append(f"the plan is {plan.status.value}, not proven optimal: displaced "
                        "values are relative to it")

    unscheduled = [instance.job_by_id[j] for j in plan.unscheduled if j in instance.job_by_id]
    names = _tranche_names(instance, model, plan) if unscheduled else {}
    structural: dict[str, JobReason] = {}
    for job in unscheduled:
        r = _structural(instance, model, timing, job)
        if r is not None:
            structural[job.id] = r
    forced = sorted((j for j in unscheduled if j.id not in structural),
                    key=lambda j: -_best_value(instance, j))
    evaluated: dict[str, JobReason] = {}
    for job in forced[:max_jobs]:
        needs = {job.id} | nx.ancestors(graph, job.id)
        evaluated[job.id] = _force(instance, model, engine, job, plan, base_values, base_obj,
                                   needs, base_limited, job_time_limit, seed, names)
    index: _RowIndex | None = None
    for job in unscheduled:
        r = structural.get(job.id) or evaluated.get(job.id)
        if r is None:
            index = index or _RowIndex(model, base_values)
            r = _unforced(instance, model, plan, index, job, max_jobs, names)
        ex.jobs.append(r)
    ex.time_limited = base_limited or any(r.time_limited for r in ex.jobs)
    return ex


def _structural(instance: Instance, model: LinearModel, timing: _Timing,
                job: Job) -> JobReason | None:
    """Reasons that need no solve: ineligible, no fit, predecessor out or chain too long."""
    value = _best_value(instance, job)
    if not timing.usable[job.id]:
        kind: ReasonKind = "ineligible" if timing.barred[job.id] else "no_fit"
        head = ("export rules bar every pool that could run it" if kind == "ineligible"
                else "no allowed cluster can run any of its options")
        return JobReason(job.id, kind, f"{head}: {'; '.join(timing.why[job.id])}", value)
    for dep in job.after:
        if timing.end.get(dep) is None or dep in timing.late:
            return JobReason(job.id, "predecessor", f"it comes after {dep}, which can never "
                             "run", value)
    deadline = instance.deadline(job)
    end = timing.end[job.id]
    assert end is not None
    if end > deadline:
        chain = timing.chain(job.id)
        if len(chain) == 1:
            return JobReason(job.id, "no_fit", f"no runnable option fits its window "
                             f"[{job.release}, {deadline})", value)
        return JobReason(job.id, "predecessor", f"the chain {' -> '.join(chain)} cannot end "
                         f"before period {end}, after its deadline {deadline}", value)
    if not model.by_job[job.id]:
        return JobReason(job.id, "no_fit", f"no pool that can run its options has enough "
                         f"GPUs at any start in its window [{job.release}, {deadline})",
                         value)
    return None


def _unforced(instance: Instance, model: LinearModel, plan: Plan, index: _RowIndex,
              job: Job, max_jobs: int, names: dict[int, str]) -> JobReason:
    """A job not forced in (beyond ``max_jobs``): what stops it, read from the plan alone.

    A predecessor the plan does not run, else the limits of the plan that each placement of
    the job would overflow (the placement overflowing fewest is named), else it fits as is.
    """
    value = _best_value(instance, job)
    forced = (f" (not among the {max_jobs} most valuable forced in: raise max_jobs)"
              if max_jobs else "")
    outs = [d for d in job.after if plan.assignment(d) is None]
    if outs:
        return JobReason(job.id, "not_evaluated", f"it comes after {', '.join(outs)}, which "
                         f"the plan does not run{forced}", value)
    best: tuple[int, int, tuple[str, ...]] | None = None
    for i in model.by_job[job.id]:
        hit = _overflow(model, [], [i], index, names)
        if best is None or len(hit) < len(best[2]):
            best = (len(hit), i, hit)
        if not hit:
            break
    assert best is not None  # structural reasons cover jobs without placements
    p = model.placements[best[1]]
    when = f"period {p.start}" if p.periods == 1 else f"periods {p.start}-{p.end - 1}"
    where = f"on {p.cluster}/{p.accelerator} in {when}"
    if not best[2]:
        return JobReason(job.id, "not_evaluated", f"it fits beside the plan {where}: the plan "
                         f"left value on the table{forced}", value)
    return JobReason(job.id, "not_evaluated", "every placement overflows a limit the plan "
                     f"uses up, e.g. {where}: {'; '.join(best[2])}{forced}", value,
                     blocking=best[2])


def _force(instance: Instance, model: LinearModel, engine: Backend, job: Job, plan: Plan,
           base_values: list[float], base_obj: float, needs: set[str], base_limited: bool,
           time_limit: float, seed: int, names: dict[int, str]) -> JobReason:
    """Re-solve with ``job`` forced in; compare with the base plan.

    ``blocking`` are the limits that the placements of the job and of the predecessors it
    needs (``needs``, those not in the base plan) would overflow if added to the base plan.
    """
    value = _best_value(instance, job)
    idx = model.by_job[job.id]
    # Named like a mandatory assignment row, which is what it is for the re-solve.
    model.rows.append(Row("assign", f"assign[{job.id}]", list(idx), [1.0] * len(idx), "==",
                          1.0))
    try:
        raw = engine.solve(model, SolveParams(time_limit=time_limit, seed=seed), base_values)
    finally:
        model.rows.pop()
    limited = base_limited or raw.status != "optimal"
    outs = [d for d in job.after if plan.assignment(d) is None]
    pre = f"(its predecessor(s) {', '.join(outs)} are out too) " if outs else ""
    if raw.values is None:
        blocking = _blocking_elastic(instance, job, time_limit)
        if raw.status == "infeasible":
            detail = f"it cannot run {pre}without breaking a mandatory job or a hard limit"
            return JobReason(job.id, "blocked", detail, value, blocking=blocking,
                             time_limited=base_limited)
        return JobReason(job.id, "blocked", f"no plan with it {pre}found in "
                         f"{time_limit:g}s", value, blocking=blocking, time_limited=True)
    forced_obj = model.objective_value(raw.values)
    displaced = base_obj - forced_obj
    assignments = model.decode(raw.values)
    forced_plan = Plan(instance=instance.name, status=SolveStatus.FEASIBLE,
                       objective=forced_obj, assignments=tuple(assignments),
                       unscheduled=tuple(j.id for j in instance.jobs
                                         if all(a.job != j.id for a in assignments)))
    mine = next(a for a in assignments if a.job == job.id)
    base_jobs = {a.job: a for a in plan.assignments}
    forced_jobs = {a.job: a for a in assignments}
    gone = tuple(j for j in base_jobs if j not in forced_jobs)
    new_vars = [i for i, v in enumerate(raw.values) if v > 0.5 and base_values[i] < 0.5
                and model.placements[i].job in needs and model.placements[i].job not in base_jobs]
    blocking = _overflow(model, base_values, new_vars, names=names)
    binding = _binding(instance, plan_metrics(instance, forced_plan), mine)
    where = {"cluster": mine.cluster, "accelerator": mine.accelerator, "gpus": mine.gpus,
             "start": mine.start, "end": mine.end}
    if displaced < -_TOL * max(1.0, abs(base_obj)):
        return JobReason(job.id, "addable", f"forcing it in raises the objective by "
                         f"{_num(-displaced)}: the plan left value on the table", value,
                         displaced, where, blocking, binding, gone, True)
    text = (f"running it {pre}on {mine.cluster}/{mine.accelerator} in periods "
            f"{mine.start}-{mine.end - 1} costs {_num(max(0.0, displaced))} objective value")
    if gone:
        text += f", displacing {', '.join(gone)}"
    return JobReason(job.id, "displaces", text, value, max(0.0, displaced), where, blocking,
                     binding, gone, limited)


def _overflow(model: LinearModel, base: list[float], new_vars: list[int],
              index: _RowIndex | None = None,
              names: dict[int, str] | None = None) -> tuple[str, ...]:
    """Limits that adding ``new_vars`` to the base plan would overflow, grouped for reading
    (``names``: the tranche wording of credit-window rows, from ``_tranche_names``)."""
    index = index or _RowIndex(model, base)
    extra: dict[int, float] = defaultdict(float)
    for v in new_vars:
        for k, c in index.rows_of.get(v, ()):
            extra[k] += c
    over = [k for k, add in sorted(extra.items())
            if index.lhs[k] + add > model.rows[k].rhs + _TOL * max(1.0, abs(model.rows[k].rhs))]
    return _limits(model, over, names or {})


class _RowIndex:
    """The base plan's left-hand side of every limit row, and the limit rows of each var."""

    def __init__(self, model: LinearModel, base: list[float]) -> None:
        self.lhs: dict[int, float] = {}
        self.rows_of: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for k, row in enumerate(model.rows):
            if row.kind not in ("capacity", "cap", "credits", "tranche"):
                continue
            self.lhs[k] = sum(c * base[v] for v, c in zip(row.vars, row.coefs, strict=True))
            for v, c in zip(row.vars, row.coefs, strict=True):
                self.rows_of[v].append((k, c))


def _limits(model: LinearModel, rows: list[int], names: dict[int, str]) -> tuple[str, ...]:
    """Row indices as readable limits: pools and caps with their period ranges, credits and
    tranches (``names``)."""
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    caps: dict[tuple[str, str], list[int]] = defaultdict(list)
    names_out: list[str] = []
    windowed = {_parse(model.rows[k].name)[0] for k in rows if model.rows[k].kind == "tranche"}
    for k in rows:
        row = model.rows[k]
        if row.kind == "credits" and _parse(row.name)[0] in windowed:
            continue  # a tranche of the start-up is named: the total says nothing more
        if k in names:
            if names[k] not in names_out:
                names_out.append(names[k])
        elif row.kind == "capacity":
            inner = row.name[len("capacity["):-1]
            rest, _, t = inner.rpartition(",")
            cid, _, acc = rest.rpartition(",")
            pools[(cid, acc)].append(int(t))
        elif row.kind == "credits":
            names_out.append(f"credits of {_parse(row.name)[0]}")
        else:
            ident, label = _parse(row.name)
            what = "share of cap" if row.name.startswith("share[") else "cap"
            caps[(what, ident)].extend(range(_span(label)[0], _span(label)[1] + 1))
    out = [f"pool {cid}/{acc} periods {_ranges(sorted(ts))}" for (cid, acc), ts in
           pools.items()]
    out += [f"{what} {ident} periods {_ranges(sorted(set(ts)))}"
            for (what, ident), ts in caps.items()]
    return tuple(out + names_out)


def _tranche_names(instance: Instance, model: LinearModel, plan: Plan) -> dict[int, str]:
    """The wording of every credit-window row of a start-up with tranches: the tranche whose
    release the window's limit ends with (carry-over: the tranche of its last period, the
    credits row the last tranche; without carry-over: the window's own tranche), with the
    periods where it binds in ``plan`` (``tranche 1 of moonshot binds in periods 13-20``)."""
    from ...models.rules import tranche_segments

    metrics = None
    out: dict[int, str] = {}
    horizon = instance.horizon.periods
    for k, row in enumerate(model.rows):
        if row.kind not in ("tranche", "credits"):
            continue
        s = instance.startup_by_id[_parse(row.name)[0]]
        if not s.tranches or (row.kind == "credits" and not s.carry_over):
            continue
        if row.kind == "credits":
            n: int | None = len(s.tranches) - 1
        elif s.carry_over:
            n = max((i for i, t in enumerate(s.tranches) if t.from_ <= int(row.key[2])),
                    default=None)
        else:
            n = next((i for i, t in enumerate(s.tranches) if t.from_ == int(row.key[1])), None)
        if n is None:
            out[k] = f"nothing spendable for {s.id} before its first tranche"
            continue
        metrics = metrics or plan_metrics(instance, plan)
        tr = next(t for t in metrics["startups"][s.id]["tranches"] if t["index"] == n)
        periods = next(r for i, r in tranche_segments(s, horizon) if i == n)
        out[k] = tranche_text(s.id, n, tr["binding_periods"], (periods.start, periods.stop - 1),
                              tr["unspent"])
    return out


def _binding(instance: Instance, metrics: dict[str, Any], a: Assignment) -> tuple[str, ...]:
    """Limits that are tight in the forced plan and that the forced assignment uses."""
    out = []
    pool = metrics["pools"].get(f"{a.cluster}/{a.accelerator}")
    if pool is not None:
        ts = [t for t in range(a.start, a.end) if pool["used"][t] >= pool["capacity"][t] > 0]
        if ts:
            out.append(f"pool {a.cluster}/{a.accelerator} full in periods {_ranges(ts)}")
    job = instance.job_by_id[a.job]
    cluster = instance.cluster_by_id[a.cluster]
    for cap in instance.caps:
        if not cap.matches(instance, job, cluster, a.accelerator):
            continue
        hits = [w["periods"] for w in metrics["caps"][cap.id]["windows"] if w["binding"]
                and w["periods"][0] < a.end and w["periods"][1] >= a.start]
        if hits:
            out.append(f"cap {cap.id} at its limit ({len(hits)} window(s) from period "
                       f"{hits[0][0]})")
    s = metrics["startups"][job.startup]
    carry = instance.startup_by_id[job.startup].carry_over
    for tr in s["tranches"]:
        if any(t >= a.start and (carry or t < a.end) for t in tr["binding_periods"]):
            out.append(tranche_text(job.startup, tr["index"], tr["binding_periods"]))
    if s["credits"] is not None and s["spend"] >= s["credits"] * (1 - _TOL):
        out.append(f"credits of {job.startup} spent ({_num(s['spend'])} of "
                   f"{_num(s['credits'])})")
    return tuple(out)


def _blocking_elastic(instance: Instance, job: Job, time_limit: float) -> tuple[str, ...]:
    """For a job that cannot be forced in: the elastic model of the instance with it mandatory."""
    data = instance.model_dump(by_alias=True)
    k = next(i for i, j in enumerate(instance.jobs) if j.id == job.id)
    data["jobs"][k]["mandatory"] = True
    forced = Instance.model_validate(data)
    el = _elastic(forced, time_limit)
    relaxations, _ = _relax(forced, el, forced.model_dump(by_alias=True))
    out = [str(r) for r in relaxations]
    if el.dropped:
        out.append(f"cannot place {', '.join(el.dropped)} at all (window or dependencies)")
    return tuple(out)
