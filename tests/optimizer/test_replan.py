"""Re-planning: frozen jobs stay, nothing changed changes nothing, a removed pool moves only
what it must (for a large stability weight) and the objective is value - W * changes."""

from __future__ import annotations

from typing import Any

import pytest

from gpualloc import optimizer
from gpualloc.models import Assignment, Instance, Plan, SolveStatus
from tests.conftest import EXACT_BACKENDS, check_plan, close, solve_checked


def opt(periods: int, gpus: int = 8) -> list[dict[str, Any]]:
    return [{"accelerator": "H800", "gpus": gpus, "periods": periods}]


def instance(b_pool: bool = True, extra_jobs: tuple[dict[str, Any], ...] = (),
             **changes: Any) -> Instance:
    """Two clusters A and B with one 8-GPU H800 pool each (B's removable), 4 periods.

    a1, a2 (value 10, 2 periods) fit one after the other on one pool; b1 (value 25,
    4 periods) takes a whole pool. With both pools all three run (value 45).
    """
    pool = {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 0.0}
    data: dict[str, Any] = {
        "name": "replan",
        "horizon": {"periods": 4, "period_hours": 1.0},
        "clusters": [
            {"id": "A", "region": "r", "country": "US", "pools": [dict(pool)]},
            {"id": "B", "region": "r", "country": "US", "pools": [dict(pool)] if b_pool else []},
        ],
        "startups": [{"id": "s"}],
        "jobs": [
            {"id": "a1", "startup": "s", "value": 10, "options": opt(2)},
            {"id": "a2", "startup": "s", "value": 10, "options": opt(2)},
            {"id": "b1", "startup": "s", "value": 25, "options": opt(4)},
            *extra_jobs,
        ],
    }
    data.update(changes)
    return Instance.model_validate(data)


def run(job: str, cluster: str, start: int, periods: int, value: float) -> Assignment:
    return Assignment(job=job, cluster=cluster, accelerator="H800", gpus=8, start=start,
                      end=start + periods, cost=0.0, value=value, option=0)


# The plan in force before B's pool goes away (written by hand, so the test is deterministic).
PREVIOUS = Plan(instance="replan", status=SolveStatus.OPTIMAL, objective=45.0, bound=45.0,
                gap=0.0, assignments=(run("a1", "A", 0, 2, 10.0), run("a2", "A", 2, 2, 10.0),
                                      run("b1", "B", 0, 4, 25.0)))


def kinds(plan: Plan) -> dict[str, str]:
    return {c["job"]: c["kind"] for c in plan.summary["changes"]}


def test_previous_plan_is_valid() -> None:
    check_plan(instance(), PREVIOUS)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_nothing_changed_changes_nothing(backend: str) -> None:
    inst = instance()
    for now in (0, 1, 3):
        plan = solve_checked(inst, backend, previous=PREVIOUS, now=now, stability=1.0)
        assert plan.status == SolveStatus.OPTIMAL
        assert sorted(plan.assignments, key=lambda a: a.job) == \
            sorted(PREVIOUS.assignments, key=lambda a: a.job)
        assert plan.summary["changes"] == []
        assert plan.summary["replan"]["changed"] == 0
        assert plan.objective_adjustment == 0.0
        assert close(plan.objective, 45.0)


def test_replanning_a_solved_plan_keeps_it() -> None:
    inst = instance()
    first = solve_checked(inst, "cpsat")
    again = solve_checked(inst, "cpsat", previous=first, now=2, stability=0.5)
    assert set(again.assignments) == set(first.assignments)
    assert again.summary["changes"] == []
    assert close(again.objective, first.objective)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_removed_pool_large_weight_moves_only_its_jobs(backend: str) -> None:
    inst = instance(b_pool=False)
    plan = solve_checked(inst, backend, previous=PREVIOUS, now=0, stability=100.0)
    # Keeping a1 and a2 (value 20) and losing b1 costs one change; running b1 on A instead
    # (value 25) costs three: 20 - 100 > 25 - 300.
    assert kinds(plan) == {"b1": "dropped"}
    assert plan.assignment("a1") == PREVIOUS.assignment("a1")
    assert plan.assignment("a2") == PREVIOUS.assignment("a2")
    assert plan.objective_adjustment == -100.0
    assert close(plan.objective, 20.0 - 100.0)
    assert plan.status == SolveStatus.OPTIMAL
    change = plan.summary["changes"][0]
    assert change["before"] == {"cluster": "B", "accelerator": "H800", "gpus": 8, "start": 0,
                                "end": 4}
    assert change["after"] is None
    assert "B has no H800 pool" in change["why"]


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_removed_pool_zero_weight_reshuffles(backend: str) -> None:
    inst = instance(b_pool=False)
    plan = solve_checked(inst, backend, previous=PREVIOUS, now=0, stability=0.0)
    assert kinds(plan) == {"a1": "dropped", "a2": "dropped", "b1": "moved"}
    assert plan.assignment("b1") == run("b1", "A", 0, 4, 25.0)
    assert plan.objective_adjustment == 0.0
    assert close(plan.objective, 25.0)
    moved = next(c for c in plan.summary["changes"] if c["job"] == "b1")
    assert moved["after"]["cluster"] == "A"
    dropped = next(c for c in plan.summary["changes"] if c["job"] == "a1")
    assert "keeping it would break capacity[A,H800," in dropped["why"]


@pytest.mark.parametrize(("weight", "objective", "changed"), [
    (2.0, 25.0 - 3 * 2.0, 3),   # reshuffle: 19 > keep: 20 - 2 = 18
    (3.0, 20.0 - 3.0, 1),       # keep: 17 > reshuffle: 25 - 9 = 16
])
def test_removed_pool_threshold(weight: float, objective: float, changed: int) -> None:
    inst = instance(b_pool=False)
    plan = solve_checked(inst, "cpsat", previous=PREVIOUS, now=0, stability=weight)
    assert plan.summary["replan"]["changed"] == changed
    assert close(plan.objective, objective)
    assert close(plan.objective_adjustment, -weight * changed)
    assert close(plan.summary["replan"]["penalty"], weight * changed)
    assert plan.bound is not None and close(plan.bound, objective)


def test_frozen_jobs_are_kept() -> None:
    # x (value 100) would take a whole pool for 3 periods; with everything that started in
    # period 0 frozen it no longer fits (and nothing may start in the past).
    x = {"id": "x", "startup": "s", "value": 100, "options": opt(3)}
    inst = instance(extra_jobs=(x,))
    plan = solve_checked(inst, "cpsat", previous=PREVIOUS, now=1, stability=0.0)
    assert plan.summary["replan"]["frozen"] == ["a1", "b1"]
    assert plan.assignment("a1") == PREVIOUS.assignment("a1")
    assert plan.assignment("b1") == PREVIOUS.assignment("b1")
    assert plan.assignment("x") is None
    assert all(a.start >= 1 for a in plan.assignments if a.job not in ("a1", "b1"))
    # Without freezing (now=0) the valuable job displaces the others.
    free = solve_checked(inst, "cpsat", previous=PREVIOUS, now=0, stability=0.0)
    assert free.assignment("x") is not None
    assert kinds(free)["x"] == "added"


def test_nothing_starts_before_now() -> None:
    # A new job that could only run in period 0 cannot be added once period 0 is past.
    early = {"id": "early", "startup": "s", "value": 50, "deadline": 1,
             "options": [{"accelerator": "H800", "gpus": 8, "periods": 1}]}
    inst = instance(extra_jobs=(early,), clusters=[
        {"id": "A", "region": "r", "country": "US",
         "pools": [{"accelerator": "H800", "gpus": 24, "price_per_gpu_hour": 0.0}]},
        {"id": "B", "region": "r", "country": "US",
         "pools": [{"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 0.0}]}])
    plan = solve_checked(inst, "cpsat", previous=PREVIOUS, now=1, stability=1.0)
    assert plan.assignment("early") is None
    fresh = solve_checked(inst, "cpsat")
    assert fresh.assignment("early") is not None


def test_frozen_on_removed_pool_is_infeasible() -> None:
    inst = instance(b_pool=False)
    plan = optimizer.solve(inst, "cpsat", previous=PREVIOUS, now=1, stability=1.0)
    check_plan(inst, plan)
    assert plan.status == SolveStatus.INFEASIBLE
    reasons = plan.summary["reason"]
    assert len(reasons) == 1
    assert "b1 on B/H800" in reasons[0] and "B has no H800 pool" in reasons[0]


def test_retimed_when_the_window_moves() -> None:
    # a2 may now start only from period 3 (and ends by 4 at the latest): it cannot stay at 2.
    inst = instance(b_pool=True, jobs=[
        {"id": "a1", "startup": "s", "value": 10, "options": opt(2)},
        {"id": "a2", "startup": "s", "value": 10, "release": 3,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2},
                     {"accelerator": "H800", "gpus": 8, "periods": 1, "value": 9}]},
        {"id": "b1", "startup": "s", "value": 25, "options": opt(4)}])
    plan = solve_checked(inst, "cpsat", previous=PREVIOUS, now=1, stability=5.0)
    assert kinds(plan) == {"a2": "moved"}  # another option (1 period) on the same pool
    change = plan.summary["changes"][0]
    assert "outside the job's window" in change["why"]
    assert close(plan.objective, 10 + 9 + 25 - 5.0)

    shifted = instance(jobs=[
        {"id": "a1", "startup": "s", "value": 10, "options": opt(2)},
        {"id": "a2", "startup": "s", "value": 10, "options": opt(2)},
        {"id": "b1", "startup": "s", "value": 25, "options": opt(4)}],
        horizon={"periods": 5, "period_hours": 1.0},
        clusters=[{"id": "A", "region": "r", "country": "US", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 0.0,
             "capacity": [{"from": 2, "gpus": 0}, {"from": 3, "gpus": 8}]}]},
            {"id": "B", "region": "r", "country": "US", "pools": [
                {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 0.0}]}])
    plan = solve_checked(shifted, "cpsat", previous=PREVIOUS, now=1, stability=5.0)
    assert kinds(plan) == {"a2": "retimed"}
    assert plan.assignment("a2") == run("a2", "A", 3, 2, 10.0)
    assert "only 0 GPUs in period 2" in plan.summary["changes"][0]["why"]


def test_bad_parameters() -> None:
    inst = instance()
    with pytest.raises(ValueError, match="previous"):
        optimizer.solve(inst, now=1)
    with pytest.raises(ValueError, match="stability"):
        optimizer.solve(inst, previous=PREVIOUS, stability=-1.0)
    with pytest.raises(ValueError, match="now"):
        optimizer.solve(inst, previous=PREVIOUS, now=-1)
