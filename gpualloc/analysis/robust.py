"""Robust and adaptive plans under supply risk, with the regret table (DESIGN.md "Risks").

``robust(instance, risks, mode=...)`` plans for the nominal case and every risk's case
(``models.risks.cases``):

- ``mode="robust"``: one plan valid in every case, maximising the expected objective (the
  value, when risks change supply only), with a bound proven against the joint model
  (``robust_model.joint_model``);
- ``mode="adaptive"``: the extensive-form stochastic model (``robust_model.extensive_model``):
  the assignments that start before ``decide_by`` are common to all cases (first stage),
  each case re-plans the rest (recourse); it maximises the expected objective.

Per case it also solves the case on its own (its optimum with perfect foresight, with a proven
bound) and re-plans the nominal plan from ``decide_by`` with earlier starts frozen
(``optimizer.solve(case, previous=nominal_plan, now=decide_by)``). Across cases: the expected
value, the expected value of perfect information (EVPI) and the value of the stochastic
solution against planning for the nominal case (VSS). The solves run through
``whatif.solve_many``: serially, in local processes (``workers``) or on Dask (``dask``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..models import Instance, Plan, SolveStatus, compute_gap
from ..models.risks import Case, Risk, cases, first_change_period, load_risks
from .robust_model import run_task
from .whatif import make_task, solve_many

Mode = Literal["robust", "adaptive"]
MODES = ("robust", "adaptive")


def _weighted(pairs: Sequence[tuple[float, float | None]]) -> float | None:
    """``sum p * x``, or None when some x with p > 0 is unknown."""
    if any(x is None and p > 0 for p, x in pairs):
        return None
    return sum(p * (x or 0.0) for p, x in pairs)


@dataclass(frozen=True)
class CaseOutcome:
    """One row of the regret table: a case, the chosen plan there, its optimum, the nominal
    plan re-planned there."""

    name: str
    probability: float
    instance: Instance
    plan: Plan | None  # the chosen plan in this case (robust: the one plan; adaptive: its own)
    optimum: Plan  # the case solved on its own (perfect foresight), with its bound; see
    # ``best_known``: a better plan of the case found elsewhere, with that bound
    nominal: Plan | None  # the nominal plan re-planned from decide_by in this case
    description: str | None = None
    decide_by: int = 0  # the decision period

    @property
    def value(self) -> float | None:
        return None if self.plan is None else self.plan.objective

    @property
    def regret(self) -> float | None:
        """The case optimum's objective minus the chosen plan's value (a lower estimate of
        the regret when the optimum is not proven; ``regret_bound`` is the upper one)."""
        if self.value is None or self.optimum.objective is None:
            return None
        return self.optimum.objective - self.value

    @property
    def regret_bound(self) -> float | None:
        """The case's proven bound minus the chosen plan's value: the regret is at most this."""
        if self.value is None or self.optimum.bound is None:
            return None
        return self.optimum.bound - self.value

    @property
    def nominal_value(self) -> float | None:
        return None if self.nominal is None or not self.nominal.is_feasible \
            else self.nominal.objective

    @property
    def recourse(self) -> tuple[Any, ...]:
        """The plan's assignments that start at or after the decision period (adaptive)."""
        return () if self.plan is None else tuple(
            a for a in self.plan.assignments if a.start >= self.decide_by)


@dataclass(frozen=True)
class RobustResult:
    """A robust or adaptive plan, its proof and the regret table.

    ``status``, ``objective`` (the expected objective), ``bound`` and ``gap`` are those of the
    joint (robust) or extensive (adaptive) model. ``plan`` is the robust plan, or the
    adaptive first stage (the assignments starting before ``decide_by``), in the nominal case.
    """

    mode: Mode
    decide_by: int
    status: SolveStatus
    objective: float | None
    bound: float | None
    gap: float | None
    plan: Plan | None
    cases: tuple[CaseOutcome, ...]
    solve_seconds: float
    model_size: dict[str, int]

    @property
    def expected_value(self) -> float | None:
        return _weighted([(c.probability, c.value) for c in self.cases])

    @property
    def perfect_information(self) -> float | None:
        """The expected value with perfect foresight: ``sum p * case optimum``."""
        return _weighted([(c.probability, c.optimum.objective) for c in self.cases])

    @property
    def perfect_information_bound(self) -> float | None:
        """``sum p * case bound``: proven, at least the perfect-information value."""
        return _weighted([(c.probability, c.optimum.bound) for c in self.cases])

    @property
    def evpi(self) -> float | None:
        """Expected value of perfect information: perfect information minus ``expected_value``
        (up to the per-case gaps)."""
        if self.perfect_information is None or self.expected_value is None:
            return None
        return self.perfect_information - self.expected_value

    @property
    def nominal_expected(self) -> float | None:
        """The expected value of planning for the nominal case and re-planning from
        ``decide_by``; None when that plan cannot continue in some case."""
        return _weighted([(c.probability, c.nominal_value) for c in self.cases])

    @property
    def vss(self) -> float | None:
        """Value of the stochastic solution: ``expected_value - nominal_expected``."""
        if self.expected_value is None or self.nominal_expected is None:
            return None
        return self.expected_value - self.nominal_expected

    @property
    def broken(self) -> list[str]:
        """Cases in which the re-planned nominal plan has no feasible continuation."""
        return [c.name for c in self.cases if c.nominal_value is None]

    def rows(self) -> list[dict[str, Any]]:
        """The regret table as plain rows, one per case."""
        out = []
        for c in self.cases:
            out.append({
                "case": c.name, "probability": c.probability, "value": c.value,
                "optimum": c.optimum.objective, "optimum_bound": c.optimum.bound,
                "optimum_gap": c.optimum.gap, "optimum_status": c.optimum.status.value,
                "regret": c.regret, "regret_bound": c.regret_bound,
                "nominal_replanned": c.nominal_value,
                "nominal_status": None if c.nominal is None else c.nominal.status.value,
            })
        return out

    def summary(self) -> dict[str, Any]:
        """The across-case figures as plain data."""
        return {"mode": self.mode, "decide_by": self.decide_by, "status": self.status.value,
                "objective": self.objective, "bound": self.bound, "gap": self.gap,
                "expected_value": self.expected_value,
                "perfect_information": self.perfect_information,
                "perfect_information_bound": self.perfect_information_bound,
                "evpi": self.evpi, "nominal_expected": self.nominal_expected, "vss": self.vss,
                "broken": self.broken, "solve_seconds": self.solve_seconds,
                "model_size": self.model_size}


def check_decide_by(instance: Instance, decide_by: Any) -> int:
    """``decide_by`` as a period in ``0..horizon``; ValueError otherwise."""
    periods = instance.horizon.periods
    if isinstance(decide_by, bool) or not isinstance(decide_by, int) or \
            not 0 <= decide_by <= periods:
        raise ValueError(f"decide_by must be a period from 0 to the horizon ({periods}), "
                         f"got {decide_by!r}")
    return decide_by


def robust(instance: Instance, risks: Sequence[Risk] | str | Path, *, mode: Mode = "robust",
           decide_by: int | None = None, time_limit: float | None = 60.0,
           workers: int = 1, backend: str = "cpsat", dask: str | None = None, seed: int = 0,
           gap_tolerance: float = 1e-6,
           progress: Callable[[int, int, str], None] | None = None) -> RobustResult:
    """Plan ``instance`` under ``risks`` (a list or a risks file) in ``mode``.

    ``decide_by`` (default: the earliest period any risk changes, ``first_change_period``):
    adaptive mode's decision period, and the period from which the nominal plan is re-planned
    in every case. ``time_limit``: seconds per solve. ``workers`` local processes or a Dask
    scheduler ``dask`` run the solves; each solve uses one solver thread.
    """
    from ..optimizer.backends import get_backend

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    get_backend(backend)
    if isinstance(risks, str | Path):
        risks = load_risks(risks, instance)
    if decide_by is None:
        decide_by = min(first_change_period(risks), instance.horizon.periods)
    decide_by = check_decide_by(instance, decide_by)
    all_cases = cases(instance, risks)
    common = {"backend": backend, "time_limit": time_limit, "seed": seed,
              "gap_tolerance": gap_tolerance}
    joint = {"kind": mode, "name": mode, "decide_by": decide_by, **common,
             "instances": [c.instance.model_dump(by_alias=True) for c in all_cases],
             "names": [c.name for c in all_cases],
             "weights": [c.probability for c in all_cases]}
    # the nominal optimum first (every re-plan starts from it), then the other optima and the
    # re-plans side by side, with the joint model (robust); the extensive model (adaptive)
    # last, warm-started from the re-plans, which together are one of its solutions
    nominal = solve_many([make_task(all_cases[0].name, instance, **common)],
                         dask_address=dask, run=run_task)[0]
    hint = nominal if nominal.is_feasible else None  # a hint where it is no longer valid
    tasks = [make_task(c.name, c.instance, **common, warm_start=hint) for c in all_cases[1:]]
    if nominal.is_feasible:
        previous = nominal.model_dump(mode="json")
        tasks += [{**make_task(f"{c.name} (nominal re-planned)", c.instance, **common),
                   "kind": "replan", "previous": previous, "now": decide_by}
                  for c in all_cases]
    if mode == "robust":
        tasks.insert(0, joint)
    solved = solve_many(tasks, workers=workers, dask_address=dask, progress=progress,
                        run=run_task)
    if mode == "robust":
        big, solved = solved[0], solved[1:]
    n = len(all_cases)
    optima = [nominal, *solved[:n - 1]]
    nominals: list[Plan | None] = list(solved[n - 1:]) if nominal.is_feasible else [None] * n
    if mode == "adaptive":
        if all(p is not None and p.is_feasible for p in nominals):
            joint["warm"] = [[a.model_dump(mode="json") for a in p.assignments]
                             for p in nominals if p is not None]
        big = solve_many([joint], dask_address=dask, run=run_task)[0]
    return _result(mode, decide_by, all_cases, big, optima, nominals, gap_tolerance)


def best_known(optimum: Plan, others: Sequence[Plan | None], gap_tolerance: float) -> Plan:
    """The case's own solve, or a better plan of the same case found by another solve (the
    chosen plan there, the nominal plan re-planned there) when the time limit stopped the
    case's solve short; the bound stays the case solve's proven bound."""
    best = optimum
    for p in others:
        if p is None or not p.is_feasible or p.objective is None or p.objective_adjustment:
            continue
        if best.objective is None or p.objective > best.objective + 1e-9 * max(
                1.0, abs(p.objective)):
            best = p
    if best is optimum or best.objective is None:
        return optimum
    bound = None if optimum.bound is None else max(optimum.bound, best.objective)
    gap = compute_gap(best.objective, bound)
    status = SolveStatus.OPTIMAL if gap is not None and gap <= gap_tolerance + 1e-12 \
        else SolveStatus.FEASIBLE
    return best.model_copy(update={"bound": bound, "gap": gap, "status": status,
                                   "summary": {**best.summary, "best_known": True}})


def _result(mode: Mode, decide_by: int, all_cases: Sequence[Case], big: Plan,
            optima: Sequence[Plan], nominals: Sequence[Plan | None],
            gap_tolerance: float) -> RobustResult:
    raw = big.summary.get("case_plans") or []
    plans: list[Plan | None] = [Plan.model_validate(p) for p in raw] or [None] * len(all_cases)
    outcomes = tuple(
        CaseOutcome(name=c.name, probability=c.probability, instance=c.instance, plan=p,
                    optimum=best_known(o, [p, n], gap_tolerance), nominal=n,
                    description=c.description, decide_by=decide_by)
        for c, p, o, n in zip(all_cases, plans, optima, nominals, strict=True))
    head = plans[0]
    if head is not None and mode == "adaptive":
        head = _first_stage(all_cases[0].instance, head, decide_by)
    return RobustResult(mode=mode, decide_by=decide_by, status=big.status,
                        objective=big.objective, bound=big.bound, gap=big.gap, plan=head,
                        cases=outcomes, solve_seconds=big.solve_seconds,
                        model_size=dict(big.model_size))


def _first_stage(instance: Instance, plan: Plan, decide_by: int) -> Plan:
    """The assignments of ``plan`` that start before ``decide_by``, as a plan of its own."""
    from ..models.validator import objective_of

    first = tuple(a for a in plan.assignments if a.start < decide_by)
    run = {a.job for a in first}
    return plan.model_copy(update={
        "assignments": first, "objective": objective_of(instance, first),
        "unscheduled": tuple(j.id for j in instance.jobs if j.id not in run)})


__all__ = ["MODES", "CaseOutcome", "RobustResult", "best_known", "check_decide_by", "robust"]
