"""An instance infeasible only because its ``min_share`` floors cannot hold together.

``analysis.floors.floor_relaxation`` drops the floors and finds, exactly, the smallest amount
``delta`` by which lowering every floor alike makes them hold, with a plan that meets the
lowered floors. When it finds one (the rest of the instance is feasible), the explanation
names the floors that bind (with the ``floor[id]`` reason of ``model.infeasible`` for a floor
no plan can reach), lowers by ``delta`` the floors that this plan misses, and checks it from
outside: the relaxed instance solves feasible and passes the validator, and the instance with
those floors lowered by ``delta - 1e-4`` only is proven infeasible (no smaller uniform lowering
holds). Otherwise (``None``) the elastic model explains the instance, floors included.
"""

from __future__ import annotations

import copy
from typing import Any

from ...models import Instance, SolveStatus
from ...optimizer.backends import Backend
from ...optimizer.model.formulation import build
from ..floors import FloorRelaxation, floor_relaxation
from .explanation import _TOL, Explanation, Relaxation, Requirement, _num
from .minimal import step, verify_relaxed


def _explain_floors(instance: Instance, engine: Backend, time_limit: float,
                    seed: int) -> Explanation | None:
    """The floor explanation (module docstring), or None when the floors are not the cause."""

    fr = floor_relaxation(instance, backend=engine.name, time_limit=time_limit / 2, seed=seed)
    if fr.plan is None or fr.delta is None or fr.delta <= _TOL:
        return None
    ex = Explanation(instance=instance.name, feasible=False)
    ex.conflicts = _floor_conflicts(instance, fr)
    data = instance.model_dump(by_alias=True)
    index = {s["id"]: s for s in data["startups"]}
    for line in fr.floors:
        if line.share is not None and line.share >= line.min_share - _TOL:
            continue  # the plan found meets this floor as it is
        ex.relaxations.append(Relaxation("floor", line.startup, line.min_share - line.relaxed_to,
                                         "share", line.min_share, line.relaxed_to))
        index[line.startup]["min_share"] = line.relaxed_to
    ex.notes.append(f"the floors are lowered alike: {_num(fr.delta)} is the smallest uniform "
                    "lowering (analysis.floors.floor_relaxation)")
    if fr.status != "optimal":
        ex.notes.append(f"the floor relaxation is {fr.status}: delta {_num(fr.delta)} may not "
                        f"be the smallest (proven at least {_num(fr.delta_bound)})")
    if not verify_relaxed(ex, data, engine, max(1.0, time_limit / 4), seed):
        return ex
    below, text = _check_below(data, ex.relaxations, engine, max(1.0, time_limit / 4), seed)
    ex.minimal = below and fr.status == "optimal"
    ex.minimality = text
    return ex


def _floor_conflicts(instance: Instance, fr: FloorRelaxation) -> list[Requirement]:
    """The floors that bind when lowered alike by ``delta`` (``floor[id]`` reasons first)."""
    unreachable = {r.partition(":")[0]: r for r in build(instance).infeasible
                   if r.startswith("floor[")}
    out = []
    for line in fr.floors:
        name = f"floor[{line.startup}]"
        if name in unreachable:
            out.append(Requirement("floor", name, unreachable[name]))
        elif line.binds:
            out.append(Requirement("floor", name, f"start-up {line.startup} must reach "
                                   f"min_share {_num(line.min_share)}: with every floor "
                                   f"lowered alike, at most {_num(line.relaxed_to)} holds"))
    return out


def _check_below(data: dict[str, Any], relaxations: list[Relaxation], engine: Backend,
                 time_limit: float, seed: int) -> tuple[bool, str]:
    """Raise every lowered floor back by one step at once: it must be proven infeasible."""
    from ...optimizer.solve import solve

    if not relaxations:
        return False, "no floor lowered"
    below = copy.deepcopy(data)
    index = {s["id"]: s for s in below["startups"]}
    for r in relaxations:
        index[r.target]["min_share"] = min(r.before or 0.0, (r.after or 0.0) + step(r))
    plan = solve(Instance.model_validate(below), engine, time_limit=time_limit, seed=seed)
    delta = max(r.amount for r in relaxations) - step(relaxations[0])
    verdict = ("infeasible" if plan.status == SolveStatus.INFEASIBLE
               else f"{plan.status.value}, not proven infeasible")
    return plan.status == SolveStatus.INFEASIBLE, (
        f"the same floors lowered by {_num(delta)} (just below): {verdict}")
