"""The joint (robust) and extensive-form (adaptive) models over per-case linear models.

Both are built from ``optimizer.build`` of every case's instance, the nominal case first. A
placement is identified across cases by its key (job, cluster, accelerator, option, start).

- ``joint_model``: the placements present in every case (a placement absent in a case cannot
  run there), and every row of every case restricted to them (dropping a var fixes it to 0,
  so each restricted row still holds in its case). A plan of this model is valid in every
  case; its objective is the probability-weighted sum of the cases' objectives (the nominal
  objective when the risks do not change values or prices). A row left with no var that 0
  violates (a mandatory job with no common placement) makes the model infeasible.
- ``extensive_model``: one copy of every case's placements and rows, the objective summed
  with the cases' probabilities, and non-anticipativity: every placement starting before
  ``decide_by`` is first-stage; a case's copy of it equals the nominal copy (``link`` rows),
  and a first-stage placement missing in some case is fixed to 0 in every copy. Copies are
  told apart by their job, ``"<case index>|<job>"``, so that per-job reasoning (the trivial
  bound, LNS neighbourhoods) treats each copy as its own job.

A task of kind ``adaptive`` may carry ``warm``: per case, the assignments of a plan of that
case (the re-planned nominal plans, which together satisfy non-anticipativity) as the warm
start of the extensive model: the solve never returns worse than a valid warm start.

``run_task`` is the worker function handed to ``whatif.solve_many``: one per-case solve, one
re-plan, or one joint/extensive solve (built and split in the worker, so only plain data
travels to local processes or Dask workers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from ..models import Assignment, Instance, Plan, SolveStatus
from ..optimizer.model.formulation import Kind, LinearModel, Placement, Row, build
from ..optimizer.solve import solve
from .whatif import solve_task

Key = tuple[str, str, str, int, int]  # job, cluster, accelerator, option, start
LINK = cast(Kind, "link")  # the kind of non-anticipativity rows


def key_of(p: Placement) -> Key:
    return (p.job, p.cluster, p.accelerator, p.option, p.start)


def joint_model(models: Sequence[LinearModel], weights: Sequence[float],
                names: Sequence[str]) -> LinearModel:
    """The robust model: placements common to every case, every case's rows over them."""
    index = [{key_of(p): i for i, p in enumerate(m.placements)} for m in models]
    first = models[0]
    keep = [i for i, p in enumerate(first.placements)
            if all(key_of(p) in idx for idx in index[1:])]
    joint = LinearModel(ineligible=list(first.ineligible))
    remaps = []
    for m, idx in zip(models, index, strict=True):
        remap = [-1] * m.num_vars
        for n, i in enumerate(keep):
            remap[idx[key_of(first.placements[i])]] = n
        remaps.append(remap)
    for n, i in enumerate(keep):
        p = first.placements[i]
        joint.placements.append(p)
        joint.by_job.setdefault(p.job, []).append(n)
        joint.objective.append(sum(w * m.objective[idx[key_of(p)]]
                                   for m, w, idx in zip(models, weights, index, strict=True)))
    for job in first.by_job:
        joint.by_job.setdefault(job, [])
    seen: set[tuple[Any, ...]] = set()
    for m, remap, name in zip(models, remaps, names, strict=True):
        joint.infeasible.extend(f"{name}: {reason}" for reason in m.infeasible)
        for row in m.rows:
            pairs = [(remap[v], c) for v, c in zip(row.vars, row.coefs, strict=True)
                     if remap[v] >= 0]
            if not pairs:
                if not row.holds_at_zero():
                    joint.infeasible.append(f"{name}: {row.name} cannot hold with only the "
                                            "placements possible in every case")
                continue
            signature = (row.sense, row.rhs, tuple(pairs))
            if signature in seen:
                continue
            seen.add(signature)
            joint.rows.append(Row(row.kind, f"{name}:{row.name}", [v for v, _ in pairs],
                                  [c for _, c in pairs], row.sense, row.rhs, row.key))
    return joint


def extensive_model(models: Sequence[LinearModel], weights: Sequence[float],
                    names: Sequence[str], decide_by: int) -> tuple[LinearModel, list[int]]:
    """The adaptive model and each case's first var in it."""
    ext = LinearModel(ineligible=list(models[0].ineligible))
    offsets = []
    for k, (m, w, name) in enumerate(zip(models, weights, names, strict=True)):
        off = ext.num_vars
        offsets.append(off)
        ext.placements.extend(p._replace(job=f"{k}|{p.job}") for p in m.placements)
        ext.objective.extend(w * c for c in m.objective)
        for job, idx in m.by_job.items():
            ext.by_job[f"{k}|{job}"] = [off + i for i in idx]
        ext.rows.extend(Row(r.kind, f"{name}:{r.name}", [off + v for v in r.vars],
                            list(r.coefs), r.sense, r.rhs, r.key) for r in m.rows)
        ext.infeasible.extend(f"{name}: {reason}" for reason in m.infeasible)
    first_stage = [{key_of(p): i for i, p in enumerate(m.placements) if p.start < decide_by}
                   for m in models]
    keys = list(dict.fromkeys(key for fs in first_stage for key in fs))
    for key in keys:
        copies = [(k, offsets[k] + fs[key]) for k, fs in enumerate(first_stage) if key in fs]
        label = "{}|{}|{}|{}|{}".format(*key)
        if len(copies) < len(models):  # impossible in some case: in none
            ext.rows.extend(Row(LINK, f"{names[k]}:absent[{label}]", [v], [1.0], "==", 0.0)
                            for k, v in copies)
            continue
        nominal = copies[0][1]
        ext.rows.extend(Row(LINK, f"{names[k]}:link[{label}]", [v, nominal], [1.0, -1.0],
                            "==", 0.0) for k, v in copies[1:])
    return ext, offsets


def case_plan(instance: Instance, model: LinearModel, values: Sequence[float],
              backend: str) -> Plan:
    """A case's plan from its 0/1 vector: valid there, status ``feasible``, no bound (the
    bound of the joint or extensive model is on the expected objective, not on this)."""
    assignments = model.decode(list(values))
    run = {a.job for a in assignments}
    return Plan(instance=instance.name, status=SolveStatus.FEASIBLE,
                objective=model.objective_value(list(values)), backend=backend,
                assignments=tuple(assignments),
                unscheduled=tuple(j.id for j in instance.jobs if j.id not in run),
                model_size=model.size(), ineligible=tuple(model.ineligible))


def _split(instances: Sequence[Instance], models: Sequence[LinearModel], big: LinearModel,
           plan: Plan, mode: str, offsets: Sequence[int]) -> list[dict[str, Any]]:
    """Each case's plan (as plain data) from the joint or extensive solution."""
    if not plan.is_feasible:
        return []
    values = big.encode(list(plan.assignments))
    out = []
    for k, (inst, m) in enumerate(zip(instances, models, strict=True)):
        if mode == "robust":
            vec = m.encode(list(plan.assignments))
        else:
            vec = values[offsets[k]:offsets[k] + m.num_vars]
        out.append(case_plan(inst, m, vec, plan.backend).model_dump(mode="json"))
    return out


def solve_cases(task: dict[str, Any]) -> dict[str, Any]:
    """Build and solve the joint (``robust``) or extensive (``adaptive``) model of a task."""
    instances = [Instance.model_validate(d) for d in task["instances"]]
    models = [build(i) for i in instances]
    names, weights = task["names"], task["weights"]
    if task["kind"] == "robust":
        big, offsets = joint_model(models, weights, names), [0] * len(models)
    else:
        big, offsets = extensive_model(models, weights, names, task["decide_by"])
    warm = None
    if task.get("warm") is not None:  # per case, a plan's assignments: jobs as in the copies
        warm = Plan(instance=instances[0].name, status=SolveStatus.FEASIBLE, assignments=tuple(
            Assignment.model_validate({**a, "job": f"{k}|{a['job']}"})
            for k, case in enumerate(task["warm"]) for a in case))
    plan = solve(instances[0], task["backend"], time_limit=task["time_limit"], seed=task["seed"],
                 workers=1, gap_tolerance=task["gap_tolerance"], model=big, warm_start=warm)
    cases = _split(instances, models, big, plan, task["kind"], offsets)
    summary = {**plan.summary, "case_plans": cases}
    return plan.model_copy(update={"summary": summary}).model_dump(mode="json")


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """One task of ``analysis.robust`` (any process): ``solve``, ``replan``, ``robust`` or
    ``adaptive``; returns a plan as plain data."""
    kind = task.get("kind", "solve")
    if kind == "solve":
        return solve_task(task)
    if kind == "replan":
        instance = Instance.model_validate(task["instance"])
        plan = solve(instance, task["backend"], time_limit=task["time_limit"],
                     seed=task["seed"], workers=1, gap_tolerance=task["gap_tolerance"],
                     previous=Plan.model_validate(task["previous"]), now=task["now"])
        return plan.model_dump(mode="json")
    return solve_cases(task)


__all__ = ["case_plan", "extensive_model", "joint_model", "key_of", "run_task", "solve_cases"]
