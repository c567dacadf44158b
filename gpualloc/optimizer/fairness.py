"""Max-min fairness (``objective.kind: maxmin``, DESIGN.md "Fairness"): the first stage.

Stage 1 finds m*, the largest smallest share over valid plans. The share of start-up s is
``V_s / A_s`` (scheduled option values over its asked value), so "every share >= m" is one
linear row per start-up (``formulation.floor_rows``) and m* is found exactly, with binaries
only, by bisection over m with feasibility solves of the model plus those rows (objective 0,
so a backend stops at its first solution or proves the rows infeasible):

- ``lo``: the smallest share of a plan found so far (achieved, so m* >= lo);
- ``upper``: proven m* <= upper (at first the best share each start-up could reach alone;
  a level proven infeasible lowers it);
- when ``upper - lo`` is below ``RESOLUTION`` the test becomes "every share > lo", written
  exactly in the backends' integer units (share values scaled to integers as CP-SAT does):
  infeasible proves m* = lo, feasible raises lo.

A solve that ends on its time limit or a stop ends the search: m* is then only known to lie
in [lo, upper] (status ``feasible``). Stage 2 is the ordinary solve of ``solve()`` with the
rows "every share >= m* - fairness_tolerance" added (``add_floors``), warm-started from the
stage-1 plan, which satisfies them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..models import Instance, Plan
from .backends import Backend, SolveParams
from .backends.cpsat import integer_scale
from .backends.greedy import greedy_values
from .model.formulation import LinearModel, floor_rows
from .stop import Stop

RESOLUTION = 1e-3  # bisect down to this width, then test "share > lo" exactly
STAGE_ONE_SHARE = 0.5  # of the time limit, at most, for stage 1


@dataclass
class FirstStage:
    """What stage 1 proved: ``m_star`` reached by ``values``, and ``m* <= bound``."""

    m_star: float | None          # best smallest share found (None: no plan, or no shares)
    bound: float | None           # proven upper bound on m* (None: nothing proven)
    status: str                   # optimal | feasible | infeasible | unknown | no_shares
    solves: int = 0
    seconds: float = 0.0
    tolerance: float = 0.0
    values: list[float] | None = field(default=None, repr=False)

    @property
    def gap(self) -> float | None:
        if self.m_star is None or self.bound is None:
            return None
        return max(0.0, self.bound - self.m_star)

    @property
    def floor(self) -> float | None:
        """The share every start-up keeps in stage 2: ``m* - fairness_tolerance``."""
        return None if self.m_star is None else max(0.0, self.m_star - self.tolerance)

    def summary(self, instance: Instance, plan: Plan) -> dict[str, Any]:
        """``plan.summary["fairness"]``: both stages with their bounds and gaps."""
        from ..models.rules import shares

        achieved = shares(instance, plan.assignments) if plan.is_feasible else {}
        return {
            "stage1": {"m_star": self.m_star, "bound": self.bound, "gap": self.gap,
                       "status": self.status, "solves": self.solves,
                       "seconds": self.seconds},
            "tolerance": self.tolerance,
            "floor": self.floor,
            "stage2": {"objective": plan.objective, "bound": plan.bound, "gap": plan.gap,
                       "status": plan.status.value},
            "smallest_share": min(achieved.values()) if achieved else None,
            "shares": achieved,
        }


def smallest_share(instance: Instance, model: LinearModel, values: list[float],
                   offsets: dict[str, float] | None = None) -> float | None:
    """The smallest ``share - offset`` of a 0/1 vector (None when no start-up has a share)."""
    offsets = offsets or {}
    value = {sid: 0.0 for sid, a in instance.asked_value.items() if a > 0}
    owner = {j.id: j.startup for j in instance.jobs}
    for p, v in zip(model.placements, values, strict=True):
        if v > 0.5 and owner[p.job] in value:
            value[owner[p.job]] += p.value
    return min((v / instance.asked_value[s] - offsets.get(s, 0.0) for s, v in value.items()),
               default=None)


def best_shares(instance: Instance, model: LinearModel) -> dict[str, float]:
    """Each start-up's best share alone (each of its jobs at its best placement)."""
    best: dict[str, float] = {}
    for job in instance.jobs:
        idx = model.by_job.get(job.id, [])
        if idx:
            best[job.startup] = best.get(job.startup, 0.0) + max(
                model.placements[i].value for i in idx)
    return {s: min(1.0, best.get(s, 0.0) / a) for s, a in instance.asked_value.items()
            if a > 0}


def strict_levels(instance: Instance, model: LinearModel, lo: float,
                  offsets: dict[str, float]) -> dict[str, float]:
    """Per start-up, the smallest value above ``(offset + lo) * asked`` a plan can have, as a
    share: exact in the integer units of the start-up's option values (1e-6 relative
    otherwise)."""
    values: dict[str, list[float]] = {}
    owner = {j.id: j.startup for j in instance.jobs}
    for p in model.placements:
        values.setdefault(owner[p.job], []).append(p.value)
    out = {}
    for sid, asked in instance.asked_value.items():
        if asked <= 0:
            continue
        f = integer_scale([*values.get(sid, []), asked], max_power=6, limit=2.0**52)
        need = (offsets.get(sid, 0.0) + lo) * asked
        nxt = (math.floor(need * f + 1e-9) + 1) / f if f else need * (1 + 1e-6) + 1e-6
        out[sid] = nxt / asked
    return out


def with_floors(model: LinearModel, instance: Instance, levels: dict[str, float],
                objective: list[float] | None = None) -> LinearModel:
    """A copy of ``model`` (placements shared) with floor rows at ``levels``."""
    return LinearModel(placements=model.placements,
                       rows=model.rows + floor_rows(model, instance, levels),
                       objective=list(model.objective) if objective is None else objective,
                       by_job=model.by_job, ineligible=model.ineligible,
                       infeasible=list(model.infeasible),
                       objective_offset=model.objective_offset)


def first_stage(instance: Instance, model: LinearModel, engine: Backend,
                params: SolveParams, offsets: dict[str, float] | None = None,
                budget_share: float = STAGE_ONE_SHARE, stop: Stop | None = None) -> FirstStage:
    """Stage 1 (module docstring): m* with a proof, and a plan reaching it.

    With ``offsets`` it maximises the smallest ``share_s - offset_s`` instead (m* may then be
    negative): with the ``min_share`` floors as offsets, ``-m*`` is the smallest amount by
    which every floor must be lowered for them to hold together.
    """
    began = time.perf_counter()
    offsets = offsets or {}
    tolerance = instance.objective.fairness_tolerance
    phase = (stop if stop is not None else Stop(params.time_limit)).child(fraction=budget_share)
    sids = [s for s, a in instance.asked_value.items() if a > 0]
    if not sids:
        return FirstStage(None, None, "no_shares", tolerance=tolerance)
    zero = [0.0] * model.num_vars
    solves = 0

    def test(levels: dict[str, float]) -> tuple[str, list[float] | None]:
        nonlocal solves
        left = phase.remaining()
        if phase.stopped or (left is not None and left <= 0.01):
            return "unknown", None
        solves += 1
        trial = with_floors(model, instance, levels, zero)
        raw = engine.solve(trial, replace(params, time_limit=left, gap_tolerance=1e-6),
                           stop=phase)
        if raw.values is not None and not trial.check(raw.values):
            return "feasible", raw.values
        return ("infeasible" if raw.status == "infeasible" else "unknown"), None

    def done(status: str, lo: float | None, upper: float | None,
             values: list[float] | None) -> FirstStage:
        return FirstStage(lo, upper, status, solves, time.perf_counter() - began, tolerance,
                          values)

    values = greedy_values(model, stop=phase) if model.num_vars else []
    if model.check(values):
        status, values = test({})
        if values is None:
            return done(status, None, None, None)
    lo = smallest_share(instance, model, values, offsets)
    assert lo is not None
    best = best_shares(instance, model)
    upper = min(best[s] - offsets.get(s, 0.0) for s in sids)
    while lo < upper - 1e-12:
        strict = upper - lo <= RESOLUTION
        level = (lo + upper) / 2
        status, found = test(strict_levels(instance, model, lo, offsets) if strict
                             else {s: offsets.get(s, 0.0) + level for s in sids})
        if status == "unknown":
            return done("feasible", lo, upper, values)
        if found is None:
            upper = lo if strict else level
            continue
        achieved = smallest_share(instance, model, found, offsets)
        assert achieved is not None
        if achieved <= lo:  # a solver tolerance let through a plan that does not improve
            return done("feasible", lo, upper, values)
        lo, values = achieved, found
    return done("optimal", lo, lo, values)


def add_floors(model: LinearModel, instance: Instance, stage: FirstStage) -> None:
    """Stage 2's rows: every share at least ``m* - fairness_tolerance``."""
    if stage.floor is not None and stage.floor > 0:
        model.rows.extend(floor_rows(model, instance, dict.fromkeys(
            instance.asked_value, stage.floor)))


__all__ = ["FirstStage", "add_floors", "best_shares", "first_stage", "smallest_share",
           "with_floors"]
