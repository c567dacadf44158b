"""Which ``min_share`` floors cannot hold together, and the smallest relaxation of them.

For explain (``analysis.explain``) and users: the floors are dropped from the instance and the
smallest ``share_s - min_share_s`` over start-ups with a floor is maximised exactly, with the
bisection of ``optimizer.fairness`` (offsets = the floors). Its optimum ``t*`` is the margin by
which every floor can hold at once: ``t* >= 0`` means the floors hold together; otherwise
``delta = -t*`` is the smallest amount by which lowering every floor alike makes them hold
(proven when ``status`` is ``optimal``), and the floors whose start-up ends at exactly
``min_share - delta`` in the plan found are the ones that bind.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Instance, Plan
from ..models.rules import shares
from ..optimizer.backends import SolveParams, get_backend
from ..optimizer.fairness import first_stage
from ..optimizer.model.formulation import build

_TOL = 1e-6


@dataclass(frozen=True)
class FloorLine:
    """One floor: its ``min_share``, the share the plan found gives, the relaxed floor."""

    startup: str
    min_share: float
    share: float | None
    relaxed_to: float
    binds: bool


@dataclass(frozen=True)
class FloorRelaxation:
    """``delta``: the smallest uniform lowering of the floors (0: they hold together)."""

    delta: float | None
    delta_bound: float | None  # proven: no lowering below this makes the floors hold
    status: str                # optimal (delta proven) | feasible | infeasible | unknown
    floors: tuple[FloorLine, ...]
    plan: Plan | None          # a plan meeting the relaxed floors (None: none found)

    @property
    def feasible(self) -> bool | None:
        """Whether the floors hold together (None: not decided)."""
        if self.delta is not None and self.delta <= _TOL:
            return True
        if self.delta_bound is not None and self.delta_bound > _TOL:
            return False
        return None


def floor_relaxation(instance: Instance, *, backend: str = "cpsat",
                     time_limit: float | None = 60.0, seed: int = 0) -> FloorRelaxation:
    """The smallest uniform relaxation of the instance's ``min_share`` floors (module doc)."""
    floors = {s.id: s.min_share for s in instance.startups
              if s.min_share is not None and instance.asked_value[s.id] > 0}
    data = instance.model_dump(by_alias=True)
    for s in data["startups"]:
        s["min_share"] = None
    relaxed = Instance.model_validate(data)
    if not floors:
        return FloorRelaxation(0.0, 0.0, "optimal", (), None)
    model = build(relaxed)
    if model.infeasible:
        return FloorRelaxation(None, None, "infeasible", (), None)
    engine = get_backend(backend)
    params = SolveParams(time_limit=time_limit, seed=seed)
    stage = first_stage(relaxed, model, engine, params, offsets=floors, budget_share=1.0)
    if stage.m_star is None or stage.values is None:
        return FloorRelaxation(None, None, stage.status, (), None)
    delta = max(0.0, -stage.m_star)
    bound = None if stage.bound is None else max(0.0, -stage.bound)
    assignments = model.decode(stage.values)
    done = {a.job for a in assignments}
    plan = Plan(instance=instance.name, status="feasible", assignments=tuple(assignments),
                unscheduled=tuple(j.id for j in instance.jobs if j.id not in done),
                backend=engine.name)
    got = shares(instance, assignments)
    lines = tuple(FloorLine(sid, floor, got.get(sid), max(0.0, floor - delta),
                            delta > _TOL and got.get(sid, 0.0) <= floor - delta + _TOL)
                  for sid, floor in floors.items())
    return FloorRelaxation(delta, bound, stage.status, lines, plan)


__all__ = ["FloorLine", "FloorRelaxation", "floor_relaxation"]
