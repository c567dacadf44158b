"""explain with credit tranches and fairness floors (issue 16): the tranche or floor that makes
an instance infeasible, its proven-minimal relaxation (feasible at it, infeasible just below),
and the binding tranche as the reason a job is out of a feasible plan."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from gpualloc import analysis, optimizer
from gpualloc.analysis import Explanation, Relaxation
from gpualloc.analysis.explain import job_reasons
from gpualloc.analysis.floors import floor_relaxation
from gpualloc.models import Instance, InstanceError, SolveStatus
from gpualloc.models.scenarios import apply
from tests.conftest import check_plan

HOURS = 10.0  # one 8-GPU period at price 1 costs 80 credits


def opt(gpus: int = 8, periods: int = 1) -> list[dict[str, Any]]:
    return [{"accelerator": "H800", "gpus": gpus, "periods": periods}]


def instance(startups: list[dict[str, Any]], jobs: list[dict[str, Any]], *, periods: int = 4,
             gpus: int = 16) -> Instance:
    return Instance.model_validate(copy.deepcopy({
        "name": "t", "horizon": {"periods": periods, "period_hours": HOURS},
        "clusters": [{"id": "c1", "region": "r", "country": "US", "pools": [
            {"accelerator": "H800", "gpus": gpus, "price_per_gpu_hour": 1.0}]}],
        "startups": startups, "jobs": jobs}))


def moonshot(first: float, second: float, carry_over: bool, **kw: Any) -> dict[str, Any]:
    return {"id": "moonshot", "carry_over": carry_over, **kw,
            "tranches": [{"from": 0, "credits": first}, {"from": 2, "credits": second}]}


def infeasible(inst: Instance, backend: str = "cpsat") -> Explanation:
    assert optimizer.solve(inst, backend, time_limit=10).status == SolveStatus.INFEASIBLE
    ex = analysis.explain(inst, backend=backend, time_limit=20)
    assert not ex.feasible
    assert ex.verified is True, ex.verification
    assert ex.minimal is True, ex.minimality
    assert ex.relaxed_instance is not None
    check_plan(ex.relaxed_instance, optimizer.solve(ex.relaxed_instance, backend))
    return ex


def solves(inst: Instance, changes: list[dict[str, Any]]) -> SolveStatus:
    changed = apply(inst, changes)
    plan = optimizer.solve(changed, "cpsat", time_limit=10)
    check_plan(changed, plan)
    return plan.status


@pytest.mark.parametrize("backend", ["cpsat", "highs"])
def test_mandatory_job_and_a_tranche_without_carry_over(backend: str) -> None:
    # a must run in periods 0-1 (8 GPUs x 2 periods = 160 credits); tranche 0 holds 100 and
    # without carry-over tranche 1's 1,000 cannot pay for periods 0-1: tranche 0 +60, exactly.
    inst = instance([moonshot(100, 1000, False)],
                    [{"id": "a", "startup": "moonshot", "value": 5, "mandatory": True,
                      "deadline": 2, "options": opt(periods=2)}])
    ex = infeasible(inst, backend)
    assert ex.relaxations == [Relaxation("tranche", "moonshot", 60.0, "credits", 100.0, 160.0,
                                         (0, 1), 0)]
    assert {c.kind for c in ex.conflicts} == {"tranche", "mandatory"}
    assert "tranche 0's 100 credits" in str(ex)
    assert "tranche 0 of moonshot (periods 0-1): +60 credits (100 -> 160)" in str(ex)
    assert "tranche 0 of moonshot at 159 (just below): infeasible" in ex.minimality
    assert ex.relaxed_instance is not None
    assert [t.credits for t in ex.relaxed_instance.startups[0].tranches] == [160.0, 1000.0]
    assert ex.relaxed_instance.startups[0].credits == 1160.0
    # Applied as the what-if change: feasible at 160, infeasible just below.
    change = {"kind": "tranche", "startup": "moonshot", "index": 0}
    assert solves(inst, [{**change, "set": 160}]) == SolveStatus.OPTIMAL
    assert solves(inst, [{**change, "set": 159}]) == SolveStatus.INFEASIBLE


def test_carry_over_credits_short_relax_a_tranche_not_the_total() -> None:
    # 150 credits in two tranches, a costs 160 in periods 2-3: the total was relaxed and the
    # relaxed instance could not be built ("credits 160 differ from the sum of the tranches").
    inst = instance([moonshot(100, 50, True)],
                    [{"id": "a", "startup": "moonshot", "value": 5, "mandatory": True,
                      "release": 2, "options": opt(periods=2)}])
    ex = infeasible(inst)
    assert "could not build" not in ex.verification
    assert ex.relaxations == [Relaxation("tranche", "moonshot", 10.0, "credits", 50.0, 60.0,
                                         (2, 3), 1)]
    assert "in 2 tranches" in str(ex)


def test_a_job_before_the_first_tranche_releases_it_earlier() -> None:
    # a must run in period 0; nothing is spendable before tranche 0 (from 1): release it one
    # period earlier, exactly (from 1 it is infeasible again).
    inst = Instance.model_validate({
        **instance([], []).model_dump(by_alias=True),
        "startups": [{"id": "moonshot", "tranches": [{"from": 1, "credits": 1000}]}],
        "jobs": [{"id": "a", "startup": "moonshot", "value": 5, "mandatory": True,
                  "deadline": 1, "options": opt()}]})
    ex = infeasible(inst)
    assert ex.relaxations == [Relaxation("tranche_shift", "moonshot", 1.0, "periods", 1.0, 0.0,
                                         None, 0)]
    assert "no credits before its first tranche (from 1)" in str(ex)
    assert "released 1 period earlier (from period 1 -> 0)" in str(ex)
    assert "tranche 0 of moonshot from period 1 (just below): infeasible" in ex.minimality
    assert solves(inst, [{"kind": "tranche_shift", "startup": "moonshot", "index": 0,
                          "by": -1}]) == SolveStatus.OPTIMAL


def floors_clash() -> Instance:
    # 8 GPUs hold two of the four 4-GPU jobs: each start-up gets at most half of what it asks.
    jobs = [{"id": f"{s[0]}{k}", "startup": s, "value": 1, "options": opt(gpus=4)}
            for s in ("moonshot", "zhipu") for k in (1, 2)]
    return instance([{"id": "moonshot", "min_share": 0.75}, {"id": "zhipu", "min_share": 0.75}],
                    jobs, periods=1, gpus=8)


def test_floors_that_cannot_hold_together_are_named_with_their_relaxation() -> None:
    inst = floors_clash()
    ex = infeasible(inst)
    fr = floor_relaxation(inst)
    assert fr.status == "optimal" and fr.delta == pytest.approx(0.25)
    assert {c.name for c in ex.conflicts} == {"floor[moonshot]", "floor[zhipu]"}
    assert [(r.kind, r.target, r.before) for r in ex.relaxations] == [
        ("floor", "moonshot", 0.75), ("floor", "zhipu", 0.75)]
    assert all(r.after == pytest.approx(0.5) for r in ex.relaxations)
    assert "min_share of start-up zhipu: -0.2500 (0.7500 -> 0.5000)" in str(ex)
    assert "lowered by 0.2499 (just below): infeasible" in ex.minimality


def test_a_floor_no_plan_can_reach_gives_the_model_reason() -> None:
    # m2 (value 9) has no pool: moonshot's floor 0.9 needs 9 of its 10, at most 1 is placeable.
    inst = instance([{"id": "moonshot", "min_share": 0.9}],
                    [{"id": "m1", "startup": "moonshot", "value": 1, "options": opt()},
                     {"id": "m2", "startup": "moonshot", "value": 9,
                      "options": [{"accelerator": "H20", "gpus": 8, "periods": 1}]}])
    ex = infeasible(inst)
    assert [c.name for c in ex.conflicts] == ["floor[moonshot]"]
    assert "worth at most 1" in ex.conflicts[0].detail
    assert [(r.target, r.after) for r in ex.relaxations] == [("moonshot", pytest.approx(0.1))]


def test_a_floor_and_a_pool_together_go_through_the_elastic_model() -> None:
    # Without floors z1 (12 GPUs of 8) is infeasible too: the elastic model relaxes the pool
    # by 4 for z1 and drops moonshot's floor (cheaper than 32 more GPUs for m1 and m2).
    inst = instance([{"id": "moonshot", "min_share": 1.0}, {"id": "zhipu"}],
                    [{"id": "m1", "startup": "moonshot", "value": 1, "options": opt(gpus=16)},
                     {"id": "m2", "startup": "moonshot", "value": 1, "options": opt(gpus=16)},
                     {"id": "z1", "startup": "zhipu", "value": 1, "mandatory": True,
                      "options": opt(gpus=12)}], periods=1, gpus=8)
    ex = infeasible(inst)
    assert ex.relaxations == [Relaxation("capacity", "c1/H800", 4.0, "GPUs", 8.0, 12.0, (0, 0)),
                              Relaxation("floor", "moonshot", 1.0, "share", 1.0, 0.0)]
    assert "floor" in {c.kind for c in ex.conflicts}


def test_an_unscheduled_job_names_the_tranche_that_binds() -> None:
    # Tranche 0 (periods 0-1) and tranche 1 (periods 2-3) each pay for one 80-credit job;
    # c cannot start before period 2, where b already spends all of tranche 1.
    inst = instance([moonshot(100, 80, False)],
                    [{"id": "a", "startup": "moonshot", "value": 5, "options": opt()},
                     {"id": "b", "startup": "moonshot", "value": 4, "options": opt()},
                     {"id": "c", "startup": "moonshot", "value": 3, "release": 2,
                      "options": opt()}])
    plan = optimizer.solve(inst, "cpsat")
    check_plan(inst, plan)
    assert plan.unscheduled == ("c",)
    ex = analysis.explain(inst, plan)
    reason = ex.reason("c")
    assert reason is not None and reason.reason == "displaces"
    assert reason.blocking == ("tranche 1 of moonshot binds in periods 2-3",)
    assert "tranche 1 of moonshot binds in periods 2-3" in reason.binding
    quick = job_reasons(inst, plan)  # the report's reasons: no solve
    assert len(quick) == 1 and quick[0].detail.endswith(
        "tranche 1 of moonshot binds in periods 2-3")
    assert "credits of moonshot" not in quick[0].detail


def random_instance(rng: random.Random) -> Instance | None:
    """Three start-ups, most with tranches (with or without carry-over), some with floors,
    and three to seven small jobs on one pool; None when the draw is not a valid instance."""
    periods = rng.randint(2, 5)
    startups = []
    for k in range(3):
        s: dict[str, Any] = {"id": f"s{k}"}
        if rng.random() < 0.8:
            froms = sorted(rng.sample(range(periods), rng.randint(1, min(3, periods))))
            froms[0] = 0 if rng.random() < 0.7 else froms[0]
            s["tranches"] = [{"from": f, "credits": rng.choice([0, 40, 80, 100, 160, 200])}
                             for f in froms]
            s["carry_over"] = rng.random() < 0.5
        if rng.random() < 0.7:
            s["min_share"] = rng.choice([0.3, 0.5, 0.8])
        startups.append(s)
    jobs = []
    for j in range(rng.randint(3, 7)):
        release = rng.randint(0, periods - 1)
        jobs.append({"id": f"j{j}", "startup": f"s{rng.randint(0, 2)}",
                     "value": rng.randint(1, 5), "release": release,
                     "deadline": rng.randint(release + 1, periods),
                     "mandatory": rng.random() < 0.4,
                     "options": opt(rng.choice([4, 8]), rng.randint(1, 2))})
    try:
        return instance(startups, jobs, periods=periods, gpus=rng.choice([8, 12, 16]))
    except (InstanceError, ValueError):
        return None


def test_random_tranche_and_floor_instances_are_explained_minimally() -> None:
    # Every infeasible draw is relaxed: feasible and validated at the relaxation, proven
    # infeasible just below; no draw raises.
    rng = random.Random(16)
    seen = 0
    for _ in range(150):
        inst = random_instance(rng)
        if inst is None:
            continue
        plan = optimizer.solve(inst, "cpsat", time_limit=10)
        if plan.status != SolveStatus.INFEASIBLE:
            continue
        seen += 1
        ex = analysis.explain(inst, plan, time_limit=20)
        assert ex.verified is True and ex.minimal is True, str(ex)
        assert ex.relaxed_instance is not None
        check_plan(ex.relaxed_instance, optimizer.solve(ex.relaxed_instance, "cpsat"))
    assert seen >= 10
