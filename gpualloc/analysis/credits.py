"""How many credits can each start-up be granted that the fleet can honour?

Definition. For a start-up ``s`` with jobs, the **honourable credits** ``H_s`` are the largest
spend of ``s`` over all plans that satisfy every rule of DESIGN.md (assignment, placement,
windows, capacity, dependencies, caps, and the credits of every *other* start-up) when the
credit limit of ``s`` itself is removed:

    H_s = max { spend_s(P) : P a valid plan of the instance with credits(s) = unlimited }

where ``spend_s(P)`` is the sum of ``gpus * periods * period_hours * price`` over the
assignments of ``s``'s jobs. ``H_s`` is what the fleet could honour for ``s`` alone: it is
limited by ``s``'s own jobs (options, windows, dependencies, eligibility), by capacity and caps,
and by the room that mandatory jobs (of any start-up) must keep; other start-ups' optional jobs
give way. A grant above ``H_s`` can never be spent. The **headroom** is ``H_s - credits``:
positive means the fleet could honour a larger grant, negative means that much of the grant
can never be spent. ``H_s`` is computed by re-solving the formulation with the objective
replaced by ``s``'s spend (``solve_custom``); when that solve stops on its time limit, the
best spend found is a lower bound on ``H_s`` and ``honourable_bound`` an upper bound.

The per-start-up figures are not simultaneously achievable. For all start-ups together the
report gives the **fleet maximum**: the largest total spend over valid plans with every credit
limit removed, i.e. the most credits the fleet can honour in total, to compare with the sum of
the grants. Beside these it shows what the value-optimal plan actually spends per start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..models import Instance, Plan, SolveStatus
from ..models.metrics import plan_metrics
from ..models.rules import objective_of
from ..optimizer.model.formulation import LinearModel, Placement
from ..optimizer.solve import solve


@dataclass(frozen=True)
class CustomResult:
    """A solve of the formulation under a custom objective.

    ``status`` is about the custom objective (``optimal``: ``value`` is proven maximal);
    ``plan`` is a valid plan of the instance whose ``objective`` is the instance's own.
    """

    status: str
    value: float | None
    bound: float | None
    plan: Plan | None


def solve_custom(instance: Instance, objective: Callable[[Placement], float], *,
                 backend: str = "cpsat", time_limit: float | None = 60.0, seed: int = 0,
                 workers: int = 1, gap_tolerance: float = 1e-6,
                 warm_start: Plan | None = None) -> CustomResult:
    """Maximise ``sum objective(placement) * x`` subject to every rule of ``instance``: the one
    pipeline (``optimizer.solve`` with ``customize``) on the instance's model with its objective
    replaced; the plan returned carries the instance's own objective."""

    def custom(model: LinearModel) -> None:
        model.objective[:] = [float(objective(p)) for p in model.placements]

    solved = solve(instance, backend, time_limit=time_limit, seed=seed, workers=workers,
                   gap_tolerance=gap_tolerance, warm_start=warm_start, strategy="exact",
                   customize=custom)
    if not solved.is_feasible:
        status = "infeasible" if solved.status == SolveStatus.INFEASIBLE else "unknown"
        return CustomResult(status, None, solved.bound, None)
    value, bound = solved.objective, solved.bound
    proven = solved.status == SolveStatus.OPTIMAL
    plan = solved.model_copy(update={
        "status": SolveStatus.FEASIBLE, "objective": objective_of(instance, solved.assignments),
        "bound": None, "gap": None,
        "summary": {"custom_objective": value, "custom_bound": bound,
                    "custom_status": "optimal" if proven else "feasible"}})
    return CustomResult("optimal" if proven else "feasible", value, bound, plan)


def without_credits(instance: Instance, startups: Collection[str] | None = None) -> Instance:
    """The instance with the credit limits of ``startups`` (all when None) removed."""
    data = instance.model_dump(by_alias=True)
    data["startups"] = [{**s, "credits": None} if startups is None or s["id"] in startups
                        else s for s in data["startups"]]
    return Instance.model_validate(data)


@dataclass(frozen=True)
class CreditLine:
    """One start-up: its grant, what the optimal plan spends, and what the fleet can honour."""

    startup: str
    credits: float | None          # the grant (None: unlimited)
    spend: float | None            # spend in the value-optimal plan (None: no plan)
    honourable: float | None       # H_s: best spend found with its own limit removed
    honourable_bound: float | None  # proven upper bound on H_s
    status: str                    # status of the H_s solve (optimal: H_s exact)
    plan: Plan | None = None       # a plan reaching H_s (valid with s's credits unlimited)

    @property
    def headroom(self) -> float | None:
        """``H_s - credits``: room for a larger grant (negative: part can never be spent)."""
        if self.credits is None or self.honourable is None:
            return None
        return self.honourable - self.credits

    @property
    def unused(self) -> float | None:
        """``credits - spend`` in the optimal plan."""
        if self.credits is None or self.spend is None:
            return None
        return self.credits - self.spend


@dataclass
class CreditsReport:
    plan: Plan                       # the value-optimal plan
    lines: list[CreditLine]
    fleet_max: float | None          # most total spend with every credit limit removed
    fleet_bound: float | None
    fleet_status: str

    @property
    def total_credits(self) -> float | None:
        if any(line.credits is None for line in self.lines):
            return None
        return sum(line.credits or 0.0 for line in self.lines)

    @property
    def total_honourable(self) -> float | None:
        """``sum H_s`` (not achievable together; see ``fleet_max``)."""
        if any(line.honourable is None for line in self.lines):
            return None
        return sum(line.honourable or 0.0 for line in self.lines)


def honourable_credits(instance: Instance, *, backend: str = "cpsat",
                       time_limit: float | None = 60.0, seed: int = 0, workers: int = 1,
                       gap_tolerance: float = 1e-6, plan: Plan | None = None,
                       fleet: bool = True) -> CreditsReport:
    """Per start-up: credits, optimal-plan spend, ``H_s`` and headroom (module docstring).

    ``time_limit`` applies to each solve: the value-optimal plan (unless ``plan`` is given),
    one per start-up, and the fleet maximum.
    """
    if plan is None:
        plan = solve(instance, backend, time_limit=time_limit, seed=seed, workers=workers,
                     gap_tolerance=gap_tolerance)
    spend = ({sid: s["spend"] for sid, s in plan_metrics(instance, plan)["startups"].items()}
             if plan.is_feasible else {})
    warm = plan if plan.is_feasible else None
    owner = {j.id: j.startup for j in instance.jobs}
    lines = []
    for s in instance.startups:
        relaxed = without_credits(instance, [s.id])
        sid = s.id
        res = solve_custom(relaxed, lambda p, sid=sid: p.cost if owner[p.job] == sid else 0.0,
                           backend=backend, time_limit=time_limit, seed=seed,
                           workers=workers, gap_tolerance=gap_tolerance, warm_start=warm)
        lines.append(CreditLine(startup=s.id, credits=s.credits, spend=spend.get(s.id),
                                honourable=res.value, honourable_bound=res.bound,
                                status=res.status, plan=res.plan))
    fleet_max = fleet_bound = None
    fleet_status = "skipped"
    if fleet:
        res = solve_custom(without_credits(instance), lambda p: p.cost, backend=backend,
                           time_limit=time_limit, seed=seed, workers=workers,
                           gap_tolerance=gap_tolerance, warm_start=warm)
        fleet_max, fleet_bound, fleet_status = res.value, res.bound, res.status
    return CreditsReport(plan=plan, lines=lines, fleet_max=fleet_max, fleet_bound=fleet_bound,
                         fleet_status=fleet_status)


__all__ = [
    "CreditLine",
    "CreditsReport",
    "CustomResult",
    "honourable_credits",
    "solve_custom",
    "without_credits",
]
