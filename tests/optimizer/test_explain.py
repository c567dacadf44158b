"""Explanations: one known cause per infeasible instance, with its exact minimal relaxation
(worked out by hand), and a reason for every unscheduled job of a feasible one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from gpualloc import analysis, optimizer
from gpualloc.analysis import Explanation, Relaxation
from gpualloc.models import Instance, Plan, SolveStatus
from tests.conftest import check_plan

HOURS = 10.0
# One US cluster with a 12-GPU H800 pool (price 1 credit per GPU-hour), 2 periods of 10 hours.
BASE: dict[str, Any] = {
    "name": "why",
    "horizon": {"periods": 2, "period_hours": HOURS},
    "clusters": [{"id": "c1", "region": "r", "country": "US", "pools": [
        {"accelerator": "H800", "gpus": 12, "price_per_gpu_hour": 1.0}]}],
    "startups": [{"id": "s"}],
    "jobs": [],
}


def job(ident: str, gpus: int = 8, periods: int = 2, **kw: Any) -> dict[str, Any]:
    """A mandatory H800 job (value 10) by default."""
    return {"id": ident, "startup": "s", "value": 10, "mandatory": True,
            "options": [{"accelerator": "H800", "gpus": gpus, "periods": periods}], **kw}


def make(edit: Callable[[dict[str, Any]], object]) -> Instance:
    data = copy.deepcopy(BASE)
    edit(data)
    return Instance.model_validate(data)


def explained(inst: Instance) -> Explanation:
    plan = optimizer.solve(inst, "cpsat", time_limit=10)
    assert plan.status == SolveStatus.INFEASIBLE
    ex = analysis.explain(inst, plan, time_limit=10)
    assert not ex.feasible
    return ex


def assert_verified(ex: Explanation) -> None:
    assert ex.verified is True, ex.verification
    # proven minimal: each amount one step lower is infeasible
    assert ex.minimal is True, ex.minimality
    assert ex.minimality.count("(just below): infeasible") == len(ex.relaxations)
    assert ex.relaxed_instance is not None
    check_plan(ex.relaxed_instance, optimizer.solve(ex.relaxed_instance, "cpsat"))


def kinds(ex: Explanation) -> set[str]:
    return {c.kind for c in ex.conflicts}


# -- infeasible instances, one cause each ------------------------------------------------------
def test_pool_too_small() -> None:
    # a and b (8 GPUs each) must both run in periods 0-1 on a 12-GPU pool: 4 GPUs short.
    ex = explained(make(lambda d: d["jobs"].extend([job("a"), job("b")])))
    assert ex.relaxations == [Relaxation("capacity", "c1/H800", 4.0, "GPUs", 12.0, 16.0, (0, 1))]
    assert kinds(ex) == {"capacity", "mandatory"}
    assert {c.name for c in ex.conflicts} == {"capacity[c1,H800]", "a", "b"}
    assert_verified(ex)


def test_pool_too_small_for_one_job() -> None:
    # A 16-GPU job never fits the 12-GPU pool: the model has no placement for it at all.
    ex = explained(make(lambda d: d["jobs"].append(job("big", gpus=16))))
    assert ex.relaxations == [Relaxation("capacity", "c1/H800", 4.0, "GPUs", 12.0, 16.0, (0, 1))]
    assert {c.name for c in ex.conflicts} == {"capacity[c1,H800]", "big"}
    assert_verified(ex)


def test_pool_short_in_some_periods_only() -> None:
    # The pool drops to 4 GPUs from period 2; a (8 GPUs, 3 periods, window [1, 4)) needs 4
    # more in periods 2-3 only.
    def edit(d: dict[str, Any]) -> None:
        d["horizon"]["periods"] = 5
        d["clusters"][0]["pools"][0]["capacity"] = [{"from": 2, "gpus": 4}]
        d["jobs"].append(job("a", periods=3, release=1, deadline=4))

    ex = explained(make(edit))
    assert ex.relaxations == [Relaxation("capacity", "c1/H800", 4.0, "GPUs", 4.0, 8.0, (2, 3))]
    assert_verified(ex)
    pool = ex.relaxed_instance.clusters[0].pools[0]
    assert [pool.gpus_at(t) for t in range(5)] == [12, 12, 8, 8, 4]


def test_cap_too_low() -> None:
    # 8 GPUs x 2 periods x 10 h = 160 GPU-hours against a horizon cap of 100.
    def edit(d: dict[str, Any]) -> None:
        d["jobs"].append(job("a"))
        d["caps"] = [{"id": "k", "metric": "gpu_hours", "per": "horizon", "limit": 100}]

    ex = explained(make(edit))
    assert ex.relaxations == [Relaxation("cap", "k", 60.0, "gpu_hours", 100.0, 160.0, (0, 1))]
    assert kinds(ex) == {"cap", "mandatory"}
    assert_verified(ex)


def test_per_period_cap_too_low() -> None:
    # TPP per period: 6 GPUs' worth allowed, 8 needed in each of periods 0 and 1; one limit
    # for the cap, so the headroom is the largest window excess: 2 GPUs' worth of TPP.
    tpp = make(lambda d: None).tpp("H800")
    assert tpp > 0

    def edit(d: dict[str, Any]) -> None:
        d["jobs"].append(job("a"))
        d["caps"] = [{"id": "k", "metric": "tpp", "per": "period", "limit": 6 * tpp}]

    ex = explained(make(edit))
    assert len(ex.relaxations) == 1
    r = ex.relaxations[0]
    assert (r.kind, r.target, r.unit, r.periods) == ("cap", "k", "tpp", (0, 1))
    assert r.amount == pytest.approx(2 * tpp)
    assert r.after == pytest.approx(8 * tpp)
    assert_verified(ex)


def test_startup_short_of_credits() -> None:
    # 8 GPUs x 2 periods x 10 h x 1 credit = 160 credits against 100.
    def edit(d: dict[str, Any]) -> None:
        d["jobs"].append(job("a"))
        d["startups"][0]["credits"] = 100

    ex = explained(make(edit))
    assert ex.relaxations == [Relaxation("credits", "s", 60.0, "credits", 100.0, 160.0)]
    assert kinds(ex) == {"credits", "mandatory"}
    assert_verified(ex)


def test_deadline_too_tight() -> None:
    # Only the 4-period H800 option can run (no cluster has A100s); the window [0, 3) has 3.
    def edit(d: dict[str, Any]) -> None:
        d["horizon"]["periods"] = 6
        d["jobs"].append(job("a", deadline=3, options=[
            {"accelerator": "A100", "gpus": 8, "periods": 2},
            {"accelerator": "H800", "gpus": 8, "periods": 4}]))

    inst = make(edit)
    ex = explained(inst)
    assert ex.relaxations == [Relaxation("deadline", "a", 1.0, "periods", 3.0, 4.0)]
    assert [c.kind for c in ex.conflicts] == ["window"]
    assert "shortest runnable option takes 4 periods" in ex.conflicts[0].detail
    assert_verified(ex)
    assert ex.relaxed_instance.job_by_id["a"].deadline == 4


def test_dependency_chain_too_long() -> None:
    # a -> b -> c, 2 periods each from period 0: c ends at 6 at the earliest, deadline 5.
    def edit(d: dict[str, Any]) -> None:
        d["horizon"]["periods"] = 6
        d["jobs"].extend([job("a", mandatory=False), job("b", mandatory=False, after=["a"]),
                          job("c", after=["b"], deadline=5)])

    ex = explained(make(edit))
    assert ex.relaxations == [Relaxation("deadline", "c", 1.0, "periods", 5.0, 6.0)]
    chain = next(c for c in ex.conflicts if c.name == "c")
    assert chain.kind == "dependency"
    assert "a -> b -> c" in chain.detail
    assert {c.name for c in ex.conflicts} == {"a", "b", "c"}
    assert_verified(ex)


def test_no_relaxation_helps() -> None:
    # The only option needs A100s, which no cluster has: named, not relaxable, not verified.
    ex = explained(make(lambda d: d["jobs"].append(job("a", options=[
        {"accelerator": "A100", "gpus": 8, "periods": 1}]))))
    assert [c.kind for c in ex.conflicts] == ["placement"]
    assert "no allowed cluster has a A100 pool" in ex.conflicts[0].detail
    assert ex.relaxations == []
    assert ex.verified is False


def test_explain_solves_first_and_reports_lines() -> None:
    ex = analysis.explain(make(lambda d: d["jobs"].extend([job("a"), job("b")])),
                           time_limit=10)
    assert ex.plan is not None and ex.plan.status == SolveStatus.INFEASIBLE
    text = "\n".join(ex.lines())
    assert "pool c1/H800: +4 GPUs in periods 0-1 (12 -> 16)" in text
    assert ex.to_dict()["relaxations"][0]["periods"] == [0, 1]


# -- feasible instances: why each job is out ---------------------------------------------------
def feasible() -> Instance:
    """c1: H800 8 GPUs (1 credit/GPU-h), H20 8 GPUs (1 credit/GPU-h); 2 periods of 10 h.

    big (10) and small (4) both want the whole H800 pool for both periods: small is out.
    banned belongs to a start-up barred from 3A090.a (H800 is 3A090.a), nopool needs A100s
    (none), child comes after banned, pricey (H20, 160 credits) belongs to poor (100 credits),
    late (1 period) comes after slow (2 periods) and cannot end by the horizon.
    """
    def opt(acc: str, gpus: int = 8, periods: int = 2) -> list[dict[str, Any]]:
        return [{"accelerator": acc, "gpus": gpus, "periods": periods}]

    return Instance.model_validate({
        "name": "out",
        "horizon": {"periods": 2, "period_hours": HOURS},
        "clusters": [{"id": "c1", "region": "r", "country": "US", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0},
            {"accelerator": "H20", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s"}, {"id": "r", "restricted": ["3A090.a"]},
                     {"id": "poor", "credits": 100}],
        "jobs": [
            {"id": "big", "startup": "s", "value": 10, "options": opt("H800")},
            {"id": "small", "startup": "s", "value": 4, "options": opt("H800")},
            {"id": "banned", "startup": "r", "value": 50, "options": opt("H800", 4, 1)},
            {"id": "nopool", "startup": "s", "value": 50, "options": opt("A100", 4, 1)},
            {"id": "child", "startup": "s", "value": 50, "after": ["banned"],
             "options": opt("H20", 4, 1)},
            {"id": "pricey", "startup": "poor", "value": 7, "options": opt("H20")},
            {"id": "slow", "startup": "s", "value": 1, "options": opt("H20", 4, 2)},
            {"id": "late", "startup": "s", "value": 50, "after": ["slow"],
             "options": opt("H20", 4, 1)},
        ],
    })


@pytest.fixture(scope="module")
def why_out() -> Explanation:
    inst = feasible()
    plan = optimizer.solve(inst, "cpsat", time_limit=10)
    check_plan(inst, plan)
    assert plan.status == SolveStatus.OPTIMAL
    assert sorted(plan.unscheduled) == ["banned", "child", "late", "nopool", "pricey", "small"]
    return analysis.explain(inst, plan, time_limit=10)


def test_reason_ineligible(why_out: Explanation) -> None:
    r = why_out.reason("banned")
    assert r is not None and r.reason == "ineligible"
    assert "may not use 3A090.a" in r.detail


def test_reason_no_fit(why_out: Explanation) -> None:
    r = why_out.reason("nopool")
    assert r is not None and r.reason == "no_fit"
    assert "A100" in r.detail


def test_reason_predecessor(why_out: Explanation) -> None:
    r = why_out.reason("child")
    assert r is not None and r.reason == "predecessor"
    assert "banned" in r.detail


def test_reason_chain_too_long(why_out: Explanation) -> None:
    r = why_out.reason("late")
    assert r is not None and r.reason == "predecessor"
    assert "slow -> late cannot end before period 3, after its deadline 2" in r.detail


def test_reason_displaces(why_out: Explanation) -> None:
    r = why_out.reason("small")
    assert r is not None and r.reason == "displaces"
    assert r.displaced == pytest.approx(6.0)  # big (10) out, small (4) in
    assert r.displaced_jobs == ("big",)
    assert r.blocking == ("pool c1/H800 periods 0-1",)
    assert r.binding == ("pool c1/H800 full in periods 0-1",)
    assert r.forced == {"cluster": "c1", "accelerator": "H800", "gpus": 8, "start": 0, "end": 2}
    assert not r.time_limited


def test_reason_blocked_by_credits(why_out: Explanation) -> None:
    r = why_out.reason("pricey")
    assert r is not None and r.reason == "blocked"
    assert r.blocking == ("credits of start-up poor: +60 credits (100 -> 160)",)


def test_every_unscheduled_job_has_a_reason(why_out: Explanation) -> None:
    assert why_out.feasible
    assert [r.job for r in why_out.jobs] == list(why_out.plan.unscheduled)
    text = "\n".join(why_out.lines())
    assert "small (displaces)" in text and "blocking: pool c1/H800 periods 0-1" in text


def test_max_jobs_limits_forced_solves() -> None:
    inst = feasible()
    ex = analysis.explain(inst, max_jobs=1, time_limit=10)
    # pricey (7) is more valuable than small (4): it is forced, small is not
    assert ex.reason("pricey").reason == "blocked"
    assert ex.reason("small").reason == "not_evaluated"
    assert ex.reason("banned").reason == "ineligible"  # structural reasons need no solve


def test_a_time_limited_plan_can_leave_value_on_the_table() -> None:
    inst = feasible()
    empty = Plan(instance="out", status=SolveStatus.FEASIBLE, objective=0.0,
                 unscheduled=tuple(j.id for j in inst.jobs))
    check_plan(inst, empty)
    ex = analysis.explain(inst, empty, time_limit=10)
    r = ex.reason("big")
    assert r.reason == "addable" and r.time_limited
    assert r.displaced == pytest.approx(-11.0)  # the re-solve adds big (10) and slow (1)
    assert ex.time_limited
    assert any("not proven optimal" in n for n in ex.notes)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        analysis.explain(feasible(), time_limit=0)
    with pytest.raises(ValueError):
        analysis.explain(feasible(), max_jobs=-1)
