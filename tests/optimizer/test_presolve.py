"""Placements no plan can use: dropped, never in a feasible plan, the optimum unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance, SolveStatus
from gpualloc.models.validator import validate
from gpualloc.optimizer import solve
from gpualloc.optimizer.backends import SolveParams, get_backend
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.model.matrix import Matrix
from gpualloc.optimizer.model.presolve import dead_columns, unaffordable
from tests.conftest import REL_TOL
from tests.strategies import random_instance

pytest.importorskip("ortools")

PROPERTY = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def capped() -> Instance:
    """One pool of 64 H100; a per-period TPP cap that 16 GPUs fit and 32 do not; a job of 32
    (never runs), a job of 32 or 8 (only the 8 runs) and a job after the first."""
    return Instance.model_validate({
        "name": "capped", "horizon": {"periods": 4, "period_hours": 10},
        "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 64, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s", "name": "S", "credits": None}],
        "jobs": [
            {"id": "big", "startup": "s", "value": 10,
             "options": [{"accelerator": "H100", "gpus": 32, "periods": 2}]},
            {"id": "either", "startup": "s", "value": 5,
             "options": [{"accelerator": "H100", "gpus": 32, "periods": 1},
                         {"accelerator": "H100", "gpus": 8, "periods": 2}]},
            {"id": "next", "startup": "s", "value": 3, "after": ["big"],
             "options": [{"accelerator": "H100", "gpus": 8, "periods": 1}]}],
        "caps": [{"id": "tpp", "metric": "tpp", "per": "period", "limit": 16 * 15832}]})


def test_lone_overflows_are_dropped_and_chains_follow() -> None:
    model = build(capped())
    raw = build(capped(), presolve=False)
    assert not model.by_job["big"] and not model.by_job["next"]  # next needs big
    assert {model.placements[i].gpus for i in model.by_job["either"]} == {8}
    assert model.dropped == raw.num_vars - model.num_vars > 0
    assert not dead_columns(model.matrix()).any()


def test_a_mandatory_job_left_without_placements_is_infeasible() -> None:
    data = capped().model_dump(by_alias=True)
    data["jobs"][0]["mandatory"] = True
    instance = Instance.model_validate(data)
    assert any("big" in r and "cap[tpp]" in r for r in build(instance).infeasible)
    assert solve(instance, "cpsat", time_limit=10).status == SolveStatus.INFEASIBLE


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), jobs=st.integers(3, 10), periods=st.integers(2, 6))
def test_presolve_keeps_the_optimum(seed: int, jobs: int, periods: int) -> None:
    """The dropped placements are in no feasible plan: the exact optimum is the same with
    and without them, and the presolved model's plan passes the validator."""
    instance = random_instance(seed, jobs=jobs, periods=periods)
    model, raw = build(instance), build(instance, presolve=False)
    assert model.num_vars == raw.num_vars - model.dropped
    kept, fresh = model.matrix(), Matrix(model)  # the renumbered arrays, and built anew
    for name in ("row_ptr", "rows", "cols", "vals", "col_ptr", "col_rows", "col_vals",
                 "sense", "rhs"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name), name)
    engine = get_backend("cpsat")
    params = SolveParams(time_limit=10.0, seed=0, workers=1)
    a, b = engine.solve(model, params), engine.solve(raw, params)
    assert (a.status == "infeasible") == (b.status == "infeasible")
    if a.status == b.status == "optimal":
        objective = model.objective_value(a.values)
        reference = raw.objective_value(b.values)
        assert objective == pytest.approx(reference, rel=REL_TOL, abs=REL_TOL)
    plan = solve(instance, "cpsat", time_limit=10.0, workers=1)
    if plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        assert validate(instance, plan) == []
    # every dropped placement alone (all else at 0) breaks a row of the raw model, but those
    # of jobs their start-ups cannot afford with their dependencies and the forced jobs
    keys = {tuple(p) for p in model.placements}
    gone = [i for i, p in enumerate(raw.placements) if tuple(p) not in keys]
    assert len(gone) == model.dropped
    mat = raw.matrix()
    poor = unaffordable(raw, mat, ~dead_columns(mat), {j.id: j.after for j in instance.jobs})
    for i in [i for i in gone if not poor[i]][:50]:
        x = np.zeros(raw.num_vars)
        x[i] = 1.0
        assert [r for r in raw.check(x.tolist(), tol=1e-12) if not r.startswith("assign")], \
            raw.placements[i]


def budget(credits: float, mandatory: bool = False) -> Instance:
    """One pool of 8 H100 at 1 per GPU-hour, 1 h periods: ``base`` (8 GPUs x 2 periods, cost
    16), ``next`` after it (8 x 1: cost 8), ``free`` (8 x 1: cost 8, no dependency), all of
    one start-up with ``credits``; ``base`` mandatory when asked."""
    job = {"startup": "s", "value": 1, "options": [{"accelerator": "H100", "gpus": 8,
                                                    "periods": 1}]}
    return Instance.model_validate({
        "name": "budget", "horizon": {"periods": 6, "period_hours": 1},
        "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s", "credits": credits}],
        "jobs": [
            {**job, "id": "base", "mandatory": mandatory,
             "options": [{"accelerator": "H100", "gpus": 8, "periods": 2}]},
            {**job, "id": "next", "value": 10, "after": ["base"]},
            {**job, "id": "free"}]})


@pytest.mark.parametrize(("credits", "mandatory", "gone"), [
    (24.0, False, set()),        # base + next = 24: affordable
    (23.0, False, {"next"}),     # next needs base: 24 > 23, though next alone costs 8
    (24.0, True, set()),         # base forced: 8 more fits (not both: not this rule's)
    (23.0, True, {"next", "free"}),  # base (16) must run: 8 more does not fit
])
def test_jobs_their_start_up_cannot_afford_are_dropped(credits: float, mandatory: bool,
                                                       gone: set[str]) -> None:
    model = build(budget(credits, mandatory))
    assert {j for j, idx in model.by_job.items() if not idx} == gone
    assert not model.infeasible
    plan = solve(budget(credits, mandatory), "cpsat", time_limit=10, workers=1)
    assert plan.status == SolveStatus.OPTIMAL and validate(budget(credits, mandatory), plan) == []
    assert not {a.job for a in plan.assignments} & gone


def test_a_horizon_cap_is_a_budget_too() -> None:
    """Unlimited credits, a GPU-hour cap over the horizon of 23: base (16) and next (8) do not
    both fit under it, so next, which needs base, never runs; free (8) still may."""
    data = budget(1e9).model_dump(by_alias=True)
    data["startups"][0]["credits"] = None
    data["caps"] = [{"id": "hours", "metric": "gpu_hours", "per": "horizon", "limit": 23,
                     "accelerators": ["H100"]}]
    instance = Instance.model_validate(data)
    model = build(instance)
    assert {j for j, idx in model.by_job.items() if not idx} == {"next"}
    plan = solve(instance, "cpsat", time_limit=10, workers=1)
    assert plan.status == SolveStatus.OPTIMAL and validate(instance, plan) == []


def test_forced_jobs_over_the_credits_are_infeasible_before_solving() -> None:
    data = budget(30.0, mandatory=True).model_dump(by_alias=True)
    data["jobs"][1]["mandatory"] = True  # next too: base + next = 24 > 23
    data["startups"][0]["credits"] = 23.0
    instance = Instance.model_validate(data)
    assert any("credits[s]" in r and "24.00 > 23.00" in r for r in build(instance).infeasible)
    assert solve(instance, "cpsat", time_limit=10).status == SolveStatus.INFEASIBLE


def test_random_instances_exercise_the_budget_rule() -> None:
    """The property test above meets the rule: on some of its seeds it drops a job."""
    hits = 0
    for seed in range(30):
        instance = random_instance(seed, jobs=10, periods=6)
        raw = build(instance, presolve=False)
        mat = raw.matrix()
        hits += bool(unaffordable(raw, mat, ~dead_columns(mat),
                                  {j.id: j.after for j in instance.jobs}).any())
    assert hits >= 3
