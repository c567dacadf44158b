"""Fairness: min_share floors (rule 8) and the two-stage max-min objective.

Optima are checked against brute force written from DESIGN.md (tests/models/test_tranches.py):
m* is the largest smallest share over valid plans, and stage 2 the best value among the
valid plans whose every share is at least m* - fairness_tolerance.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance, SolveStatus
from gpualloc.optimizer.model.formulation import build
from tests.conftest import EXACT_BACKENDS, assert_infeasible, close, solve_checked
from tests.models.test_tranches import (
    TOL,
    brute_capacity_ok,
    brute_share,
    brute_tranche_ok,
    every_plan,
    tiny,
)

SMALL = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def maxmin(tolerance: float = 0.0, **kw: Any) -> Instance:
    data = tiny(**kw)
    data["objective"] = {"kind": "maxmin", "fairness_tolerance": tolerance}
    return Instance.model_validate(data)


def brute_maxmin(inst: Instance) -> tuple[float, float]:
    """(m*, best value with every share >= m* - tolerance) by enumeration."""
    plans = []
    for combo in every_plan(inst):
        if brute_capacity_ok(inst, combo) and brute_tranche_ok(inst, combo):
            low = min(s for sid in ("a", "b") if (s := brute_share(inst, combo, sid))
                      is not None)
            value = sum(inst.startup_by_id[inst.job_by_id[x.job].startup].weight * x.value
                        for x in combo)
            plans.append((low, value))
    m_star = max(low for low, _ in plans)
    floor = m_star - inst.objective.fairness_tolerance
    return m_star, max(v for low, v in plans if low >= floor - TOL)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@SMALL
@given(gpus=st.sampled_from([4, 6]), values=st.sampled_from([(3, 2, 4), (1, 5, 2.5), (6, 1, 1)]),
       tolerance=st.sampled_from([0.0, 0.2]),
       tranches=st.sampled_from([None, [{"from": 0, "credits": 4}, {"from": 2, "credits": 6}]]))
def test_both_stages_match_brute_force(backend: str, gpus: int, values: tuple[float, ...],
                                       tolerance: float, tranches: Any) -> None:
    inst = maxmin(tolerance, gpus=gpus, values=values, lengths=(2, 1, 2), tranches=tranches,
                  credits=None if tranches else 10.0)
    m_star, best = brute_maxmin(inst)
    plan = solve_checked(inst, backend)
    fair = plan.summary["fairness"]
    assert fair["stage1"]["status"] == "optimal"
    assert close(fair["stage1"]["m_star"], m_star) and close(fair["stage1"]["bound"], m_star)
    assert fair["stage1"]["gap"] == 0.0
    assert plan.status == SolveStatus.OPTIMAL and close(plan.objective, best)
    assert fair["stage2"] == {"objective": plan.objective, "bound": plan.bound,
                              "gap": plan.gap, "status": "optimal"}
    assert fair["smallest_share"] >= m_star - tolerance - TOL


def test_greedy_maxmin_returns_a_valid_plan() -> None:
    inst = maxmin(values=(3, 2, 4), lengths=(2, 1, 2))
    plan = solve_checked(inst, "greedy")
    assert plan.summary["fairness"]["stage1"]["m_star"] is not None


def test_floor_no_job_can_reach_is_known_before_solving() -> None:
    data = tiny(min_share=0.9, values=(3, 2, 4), lengths=(2, 1, 2), credits=None)
    data["jobs"][2]["clusters"] = []  # j2 may run nowhere: a's share is at most 5/9
    inst = Instance.model_validate(data)
    model = build(inst)
    assert any(r.startswith("floor[a]:") for r in model.infeasible)
    for backend in EXACT_BACKENDS:
        assert_infeasible(solve_checked(inst, backend), backend)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_floors_that_cannot_hold_together_are_infeasible(backend: str) -> None:
    # b's only job takes the whole H800 pool for 2 of 2 periods; a's full share needs it too
    data = tiny(min_share=1.0, values=(3, 2, 4), lengths=(2, 1, 1), credits=None, periods=2)
    data["startups"][1]["min_share"] = 1.0
    inst = Instance.model_validate(data)
    assert not build(inst).infeasible  # each floor alone can hold
    assert_infeasible(solve_checked(inst, backend), backend)
    data["startups"][1]["min_share"] = 0.0
    plan = solve_checked(Instance.model_validate(data), backend)
    assert plan.status == SolveStatus.OPTIMAL


def test_floor_relaxation_names_the_floors_and_the_smallest_lowering() -> None:
    from gpualloc.analysis.floors import floor_relaxation
    from gpualloc.models.validator import validate

    data = tiny(min_share=1.0, values=(3, 2, 4), lengths=(2, 1, 1), credits=None, periods=2)
    data["startups"][1]["min_share"] = 1.0
    inst = Instance.model_validate(data)
    rel = floor_relaxation(inst, time_limit=20)
    # brute force: the largest min over start-ups of share - floor, over valid plans
    best = max(min(brute_share(inst, c, s) - 1.0 for s in ("a", "b"))
               for c in every_plan(inst) if brute_capacity_ok(inst, c))
    assert rel.status == "optimal" and close(rel.delta, -best) and rel.feasible is False
    assert {f.startup for f in rel.floors} == {"a", "b"} and any(f.binds for f in rel.floors)
    relaxed = data | {"startups": [s | {"min_share": 1.0 - rel.delta} for s in data["startups"]]}
    assert validate(Instance.model_validate(relaxed), rel.plan) == []


def test_greedy_places_floor_startups_first() -> None:
    # b's only job is worth less per GPU-period than a's, and a alone would fill the pool
    data = tiny(values=(30, 20, 40), lengths=(2, 2, 2), credits=None, gpus=4, periods=2)
    data["startups"][1]["min_share"] = 1.0
    inst = Instance.model_validate(data)
    plan = solve_checked(inst, "greedy")
    assert plan.status == SolveStatus.FEASIBLE and "other" in {a.job for a in plan.assignments}
