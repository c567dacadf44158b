"""Re-planning: freeze what has started, charge a stability cost for every other change.

``solve(instance, previous=plan, now=t, stability=w)`` re-plans from period ``t`` on:

- every assignment of ``previous`` that started before ``now`` is frozen exactly (same cluster,
  accelerator, GPUs and start). If the new model cannot express it (its pool was removed, the
  capacity dropped below its GPUs, its option or window changed ...), the result is infeasible
  and ``plan.summary["reason"]`` says why;
- no other job may start before ``now`` (that time has passed);
- every other previously assigned job may change at a cost of ``w`` per change: dropped, moved
  (another cluster, accelerator or option) or retimed (another start). It is written linearly:
  ``+w`` on the objective coefficient of the placement that repeats the previous assignment and
  a constant ``-w`` per such job (``LinearModel.objective_offset``), so the model maximises
  ``value - w * changes``. Newly added jobs cost nothing.

The resulting plan has ``objective = value + objective_adjustment`` with
``objective_adjustment = -w * changes``; ``bound`` and ``gap`` refer to that objective.
``plan.summary["changes"]`` lists each change (``job``, ``kind``, ``before``, ``after``, ``why``)
and ``plan.summary["replan"]`` the frozen jobs and totals. The previous plan is the warm start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...models import Assignment, Instance, Plan, SolveStatus, compute_gap
from .formulation import LinearModel, Row
from .matrix import Matrix

Key = tuple[str, str, str, int, int, int]

PENALISED = ("dropped", "moved", "retimed")


def _key(a: Assignment) -> Key:
    return (a.job, a.cluster, a.accelerator, a.gpus, a.start, a.end - a.start)


def _where(a: Assignment | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"cluster": a.cluster, "accelerator": a.accelerator, "gpus": a.gpus,
            "start": a.start, "end": a.end}


def describe(a: Assignment) -> str:
    """``job on cluster/accelerator x gpus, periods s..e-1``."""
    return (f"{a.job} on {a.cluster}/{a.accelerator} x{a.gpus}, periods "
            f"{a.start}..{a.end - 1}")


def why_missing(instance: Instance, a: Assignment) -> str:
    """Why the model has no placement repeating assignment ``a`` (in the current instance)."""
    job = instance.job_by_id.get(a.job)
    if job is None:
        return f"job {a.job} is no longer in the instance"
    cluster = instance.cluster_by_id.get(a.cluster)
    if cluster is None:
        return f"cluster {a.cluster} is no longer in the instance"
    pool = cluster.pool(a.accelerator)
    if pool is None:
        return f"cluster {a.cluster} no longer has a {a.accelerator} pool"
    periods = a.end - a.start
    if not any((o.accelerator, o.gpus, o.periods) == (a.accelerator, a.gpus, periods)
               for o in job.options):
        return (f"job {a.job} no longer has an option {a.accelerator} x{a.gpus} for "
                f"{periods} periods")
    if all(c.id != cluster.id for c in instance.allowed_clusters(job)):
        return f"cluster {a.cluster} is no longer allowed for job {a.job}"
    reason = instance.ineligibility(job, a.accelerator, cluster)
    if reason is not None:
        return f"no longer eligible: {reason}"
    if pool.max_gpus_per_job is not None and a.gpus > pool.max_gpus_per_job:
        return f"the pool now takes at most {pool.max_gpus_per_job} GPUs per job"
    if a.start < job.release or a.end > instance.deadline(job):
        return (f"periods {a.start}..{a.end - 1} are outside the job's window "
                f"[{job.release}, {instance.deadline(job)})")
    for t in range(a.start, a.end):
        if pool.gpus_at(t) < a.gpus:
            return (f"pool {a.cluster}/{a.accelerator} has only {pool.gpus_at(t)} GPUs in "
                    f"period {t}")
    return "the model cannot express it"


@dataclass
class Replan:
    """What ``prepare`` did to the model, for ``finish`` to report."""

    previous: Plan
    now: int
    stability: float
    base_objective: list[float]
    frozen: list[str] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)  # penalised if changed
    missing: dict[str, str] = field(default_factory=dict)  # job -> why its placement is gone
    removed_jobs: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def prepare(instance: Instance, model: LinearModel, previous: Plan, now: int | None = None,
            stability: float = 0.0) -> Replan:
    """Freeze, forbid the past and add the stability terms to ``model`` (in place)."""
    now = 0 if now is None else now
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise ValueError(f"now must be a period >= 0, got {now!r}")
    if not math.isfinite(stability) or stability < 0:
        raise ValueError(f"stability must be a finite number >= 0, got {stability!r}")
    ctx = Replan(previous=previous, now=now, stability=float(stability),
                 base_objective=list(model.objective))
    index = {(p.job, p.cluster, p.accelerator, p.gpus, p.start, p.periods): i
             for i, p in enumerate(model.placements)}
    seen: set[str] = set()
    for a in previous.assignments:
        if a.job in seen:
            ctx.reasons.append(f"previous plan assigns job {a.job} more than once")
            continue
        seen.add(a.job)
        i = index.get(_key(a))
        frozen = a.start < now
        if a.job not in instance.job_by_id:
            ctx.removed_jobs.append(a.job)
            if frozen:
                ctx.reasons.append(f"frozen assignment {describe(a)} (started before period "
                                   f"{now}) cannot be kept: job {a.job} is no longer in the "
                                   "instance")
            continue
        if frozen:
            ctx.frozen.append(a.job)
            if i is None:
                ctx.reasons.append(f"frozen assignment {describe(a)} (started before period "
                                   f"{now}) cannot be kept: {why_missing(instance, a)}")
                # an unsatisfiable row, so that no vector (warm start included) passes check()
                model.rows.append(Row("assign", f"assign[{a.job}]", [], [], "==", 1.0))
            else:
                model.rows.append(Row("assign", f"assign[{a.job}]", [i], [1.0], "==", 1.0))
            continue
        ctx.counted.append(a.job)
        model.objective_offset -= ctx.stability
        if i is None:
            ctx.missing[a.job] = why_missing(instance, a)
        else:
            model.objective[i] += ctx.stability
    frozen = set(ctx.frozen)
    if now > 0:
        for job in instance.jobs:
            if job.id in frozen:
                continue
            past = [i for i in model.by_job[job.id] if model.placements[i].start < now]
            if past:
                model.rows.append(Row("assign", f"before-now[{job.id}]", past,
                                      [1.0] * len(past), "<=", 0.0))
    model.infeasible.extend(ctx.reasons)
    return ctx


def finish(ctx: Replan, instance: Instance, model: LinearModel, plan: Plan) -> Plan:
    """Turn the solved re-planning model into the plan: true objective, changes, summary."""
    summary = dict(plan.summary)
    parameters = {**plan.parameters, "now": ctx.now, "stability": ctx.stability,
                  "previous": ctx.previous.instance}
    info: dict[str, Any] = {"now": ctx.now, "stability": ctx.stability,
                            "frozen": list(ctx.frozen), "removed_jobs": list(ctx.removed_jobs)}
    if ctx.reasons:
        reasons = list(summary.get("reason", []))
        summary["reason"] = reasons + [r for r in ctx.reasons if r not in reasons]
    if not plan.assignments and plan.status in (SolveStatus.INFEASIBLE, SolveStatus.UNKNOWN):
        info.update(changed=0, penalty=0.0)
        summary.update(changes=[], replan=info)
        return plan.model_copy(update={"summary": summary, "parameters": parameters})

    values = model.encode(list(plan.assignments))
    value = math.fsum(c for c, v in zip(ctx.base_objective, values, strict=True) if v > 0.5)
    changes = _changes(ctx, instance, model, plan, values)
    changed = sum(1 for c in changes if c["kind"] in PENALISED)
    adjustment = -ctx.stability * changed
    objective = value + adjustment
    bound = plan.bound
    if bound is not None:
        bound = max(bound + model.objective_offset, objective)
    info.update(changed=changed, penalty=-adjustment)
    summary.update(changes=changes, replan=info)
    return plan.model_copy(update={
        "objective": objective, "bound": bound, "gap": compute_gap(objective, bound),
        "objective_adjustment": adjustment, "summary": summary, "parameters": parameters})


def _changes(ctx: Replan, instance: Instance, model: LinearModel, plan: Plan,
             values: list[float]) -> list[dict[str, Any]]:
    frozen = set(ctx.frozen)
    touches = model.matrix()  # the shared variable-to-row map
    index = {(p.job, p.cluster, p.accelerator, p.gpus, p.start, p.periods): i
             for i, p in enumerate(model.placements)}
    out = []
    for job in instance.jobs:
        if job.id in frozen:
            continue
        before = ctx.previous.assignment(job.id)
        after = plan.assignment(job.id)
        if before is None and after is None:
            continue
        if before is not None and after is not None and _key(before) == _key(after):
            continue
        if before is None:
            kind = "added"
        elif after is None:
            kind = "dropped"
        elif (before.cluster, before.accelerator, before.gpus, before.end - before.start) != \
                (after.cluster, after.accelerator, after.gpus, after.end - after.start):
            kind = "moved"
        else:
            kind = "retimed"
        if kind == "added":
            why = "newly scheduled"
        elif job.id in ctx.missing:
            why = f"its previous placement is no longer possible: {ctx.missing[job.id]}"
        else:
            assert before is not None
            why = _why_changed(ctx, model, values, touches, index, before, after)
        out.append({"job": job.id, "kind": kind, "before": _where(before),
                    "after": _where(after), "why": why})
    return out


def _why_changed(ctx: Replan, model: LinearModel, values: list[float],
                 touches: Matrix, index: dict[Key, int], before: Assignment,
                 after: Assignment | None) -> str:
    """Which rows the previous placement would break in the new plan, if any."""
    i = index[_key(before)]
    trial = list(values)
    if after is not None:
        j = index.get(_key(after))
        if j is not None:
            trial[j] = 0.0
    trial[i] = 1.0
    broken = []
    for r in touches.column(i)[0].tolist():
        row = model.rows[r]
        lhs = sum(c * trial[v] for v, c in zip(row.vars, row.coefs, strict=True))
        tol = 1e-6 * max(1.0, abs(row.rhs))
        if (row.sense == "<=" and lhs > row.rhs + tol) or \
                (row.sense == "==" and abs(lhs - row.rhs) > tol):
            broken.append(row.name)
    if broken:
        shown = ", ".join(broken[:5]) + (f" and {len(broken) - 5} more" if len(broken) > 5
                                         else "")
        return f"keeping it would break {shown} in the new plan"
    return (f"re-optimised: the new plan gains more than the stability cost "
            f"({ctx.stability:g} per change)")


__all__ = ["Replan", "describe", "finish", "prepare", "why_missing"]
