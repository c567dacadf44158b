"""The independent validator: one broken plan (and its correction) per rule of DESIGN.md."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from gpualloc.models import Assignment, Instance, Plan
from gpualloc.models.rules import objective_of
from gpualloc.models.validator import Violation, is_valid, validate

HOURS = 10.0
# Export classes under the default regime (oct2023): H800 is 3A090.a, H20 unrestricted.
BASE: dict[str, Any] = {
    "name": "tiny",
    "horizon": {"periods": 6, "period_hours": HOURS},
    "clusters": [
        {"id": "cn1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0, "max_gpus_per_job": 8,
             "capacity": [{"from": 2, "gpus": 4}]},
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 0.5},
        ]},
        {"id": "sg1", "region": "south", "country": "SG", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0},
        ]},
    ],
    "startups": [
        {"id": "alpha", "credits": 1000, "weight": 2.0, "headquarters": "CN"},
        {"id": "beta", "weight": 1.0, "headquarters": "US"},
    ],
    "jobs": [
        {"id": "a1", "startup": "alpha", "value": 10, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 2},
            {"accelerator": "H20", "gpus": 8, "periods": 3, "value": 7},
        ]},
        {"id": "a2", "startup": "alpha", "value": 5, "release": 1, "deadline": 5,
         "after": ["a1"], "options": [{"accelerator": "H20", "gpus": 4, "periods": 2}]},
        {"id": "b1", "startup": "beta", "value": 3, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 1},
        ]},
    ],
}
# Written out by hand, independently of the instance helpers.
PRICE = {("cn1", "H800"): 1.0, ("cn1", "H20"): 0.5, ("sg1", "H800"): 2.0}
VALUE = {("a1", "H800"): 10.0, ("a1", "H20"): 7.0, ("a2", "H20"): 5.0, ("b1", "H800"): 3.0}
WEIGHT = {"a1": 2.0, "a2": 2.0, "b1": 1.0}


def build(*edits: Callable[[dict[str, Any]], object]) -> Instance:
    data = copy.deepcopy(BASE)
    for edit in edits:
        edit(data)
    return Instance.model_validate(data)


def run(job: str, cluster: str, acc: str, gpus: int, start: int, end: int,
        **kw: Any) -> Assignment:
    fields = {
        "job": job, "cluster": cluster, "accelerator": acc, "gpus": gpus, "start": start,
        "end": end, "cost": gpus * (end - start) * HOURS * PRICE.get((cluster, acc), 0.0),
        "value": VALUE.get((job, acc), 0.0), **kw,
    }
    return Assignment(**fields)


def plan(*assignments: Assignment, unscheduled: list[str] | None = None,
         objective: float | None = None) -> Plan:
    if unscheduled is None:
        ran = {a.job for a in assignments}
        unscheduled = [j["id"] for j in BASE["jobs"] if j["id"] not in ran]
    return Plan(instance="tiny", status="feasible", assignments=assignments,
                unscheduled=tuple(unscheduled), objective=objective)


def rules(violations: list[Violation]) -> set[int]:
    return {v.rule for v in violations}


def good() -> list[Assignment]:
    """A valid plan: a1 on cn1 H800 t0-1, a2 on cn1 H20 t2-3, b1 on sg1 H800 t0."""
    return [run("a1", "cn1", "H800", 4, 0, 2), run("a2", "cn1", "H20", 4, 2, 4),
            run("b1", "sg1", "H800", 4, 0, 1)]


def test_valid_plan_has_no_violation() -> None:
    inst = build()
    objective = 2 * (10 + 5) + 1 * 3
    p = plan(*good(), objective=objective)
    assert validate(inst, p) == []
    assert is_valid(inst, p)
    assert is_valid(inst, plan())  # nothing scheduled, every job listed unscheduled


def test_violation_str() -> None:
    v = Violation(4, "capacity[cn1,H800,t=2]", "8 GPUs in use, capacity 4")
    assert str(v) == "rule 4: capacity[cn1,H800,t=2]: 8 GPUs in use, capacity 4"


def test_objective_of_by_hand() -> None:
    inst = build(lambda d: d.update(objective={"cost_weight": 0.5}))
    # values 2*10 + 2*5 + 1*3 = 33; costs 80 + 40 + 80 = 200
    assert objective_of(inst, good()) == pytest.approx(33 - 0.5 * 200)
    assert objective_of(inst, []) == 0.0
    # the value is the option's, not the job's default: a1 on H20 is worth 7
    assert objective_of(inst, [run("a1", "cn1", "H20", 8, 0, 3)]) == pytest.approx(
        2 * 7 - 0.5 * 120)


# -- rule 1 -------------------------------------------------------------------------------
def test_rule1_job_assigned_twice() -> None:
    inst = build()
    v = validate(inst, plan(*good(), run("b1", "sg1", "H800", 4, 3, 4)))
    assert rules(v) == {1}
    assert "2 times" in v[0].message


@pytest.mark.parametrize("bad", [
    run("a1", "cn1", "H20", 4, 0, 2),                # no H20 x4 option
    run("a1", "cn1", "H800", 4, 0, 3),               # end - start 3, the option takes 2
    run("a1", "cn1", "H800", 4, 0, 2, option=1),     # option 1 is H20 x8 for 3
    run("a1", "cn1", "H800", 4, 0, 2, option=5),     # no option 5
])
def test_rule1_not_one_of_its_options(bad: Assignment) -> None:
    inst = build()
    v = validate(inst, plan(bad))
    assert 1 in rules(v)
    assert is_valid(inst, plan(run("a1", "cn1", "H800", 4, 0, 2, option=0)))


def test_rule1_mandatory_job_missing() -> None:
    inst = build(lambda d: d["jobs"][2].update(mandatory=True))
    assert rules(validate(inst, plan(*good()[:2]))) == {1}
    # missing from both lists too: rule 0 as well
    assert rules(validate(inst, plan(*good()[:2], unscheduled=[]))) == {0, 1}
    assert is_valid(inst, plan(*good()))


# -- rule 2 -------------------------------------------------------------------------------
def test_rule2_cluster_without_pool() -> None:
    inst = build()
    v = validate(inst, plan(run("a1", "sg1", "H20", 8, 0, 3)))
    assert rules(v) == {2}
    assert v[0].location == "assignments[0].cluster"
    assert is_valid(inst, plan(run("a1", "cn1", "H20", 8, 0, 3)))


def test_rule2_gpus_not_the_options() -> None:
    inst = build()
    assert rules(validate(inst, plan(run("a1", "cn1", "H800", 2, 0, 2)))) == {2}
    assert rules(validate(inst, plan(run("a1", "cn1", "H800", 2, 0, 2, option=0)))) == {2}


def test_rule2_max_gpus_per_job() -> None:
    inst = build(lambda d: d["clusters"][0]["pools"][0].update(max_gpus_per_job=2))
    v = validate(inst, plan(run("b1", "cn1", "H800", 4, 0, 1)))
    assert rules(v) == {2}
    assert "max_gpus_per_job" in v[0].message
    assert is_valid(inst, plan(run("b1", "sg1", "H800", 4, 0, 1)))


@pytest.mark.parametrize("edit", [
    lambda d: d["jobs"][2].update(clusters=["sg1"]),
    lambda d: d["jobs"][2].update(regions=["south"]),
    lambda d: d["startups"][1].update(regions=["south"]),
])
def test_rule2_cluster_not_allowed(edit: Callable[[dict[str, Any]], object]) -> None:
    inst = build(edit)
    assert rules(validate(inst, plan(run("b1", "cn1", "H800", 4, 0, 1)))) == {2}
    assert is_valid(inst, plan(run("b1", "sg1", "H800", 4, 0, 1)))


def test_rule2_startup_restricted_class() -> None:
    inst = build(lambda d: d["startups"][1].update(restricted=["3A090.a"]))
    v = validate(inst, plan(run("b1", "sg1", "H800", 4, 0, 1)))
    assert rules(v) == {2}
    assert "ineligible" in v[0].message
    assert is_valid(inst, plan())
    # the restriction is on the class: alpha's unrestricted H20 job is fine
    assert is_valid(inst, plan(run("a1", "cn1", "H20", 8, 0, 3)))


def test_rule2_eligibility_rule_by_headquarters() -> None:
    rule = {"id": "no-a-in-cn", "export_classes": ["3A090.a"], "countries": ["CN"],
            "headquarters": ["CN"]}
    inst = build(lambda d: d.update(eligibility=[rule]))
    v = validate(inst, plan(run("a1", "cn1", "H800", 4, 0, 2)))  # alpha: HQ CN
    assert rules(v) == {2}
    assert "no-a-in-cn" in v[0].message
    assert is_valid(inst, plan(run("a1", "sg1", "H800", 4, 0, 2)))  # not in CN
    assert is_valid(inst, plan(run("a1", "cn1", "H20", 8, 0, 3)))  # not 3A090.a
    assert is_valid(inst, plan(run("b1", "cn1", "H800", 4, 0, 1)))  # beta: HQ US


# -- rule 3 -------------------------------------------------------------------------------
def test_rule3_before_release() -> None:
    inst = build(lambda d: d["jobs"][1].update(after=[]))  # a2: release 1
    v = validate(inst, plan(run("a2", "cn1", "H20", 4, 0, 2)))
    assert [(x.rule, x.location) for x in v] == [(3, "assignments[0].start")]
    assert is_valid(inst, plan(run("a2", "cn1", "H20", 4, 1, 3)))


def test_rule3_after_deadline() -> None:
    inst = build()
    v = validate(inst, plan(run("a1", "cn1", "H800", 4, 0, 2), run("a2", "cn1", "H20", 4, 4, 6)))
    assert rules(v) == {3}
    assert v[0].location == "assignments[1].end"
    assert is_valid(inst, plan(run("a1", "cn1", "H800", 4, 0, 2),
                               run("a2", "cn1", "H20", 4, 3, 5)))


def test_rule3_default_deadline_is_horizon() -> None:
    inst = build()
    assert rules(validate(inst, plan(run("b1", "sg1", "H800", 4, 6, 7)))) == {3}
    assert is_valid(inst, plan(run("b1", "sg1", "H800", 4, 5, 6)))


# -- rule 4 -------------------------------------------------------------------------------
def test_rule4_capacity_after_a_change() -> None:
    inst = build()  # cn1/H800 has 8 GPUs in periods 0-1, 4 from period 2 on
    before = plan(run("a1", "cn1", "H800", 4, 0, 2), run("b1", "cn1", "H800", 4, 0, 1))
    assert is_valid(inst, before)
    after = plan(run("a1", "cn1", "H800", 4, 2, 4), run("b1", "cn1", "H800", 4, 3, 4))
    v = validate(inst, after)
    assert rules(v) == {4}
    assert [x.location for x in v] == ["capacity[cn1,H800,t=3]"]


def test_rule4_capacity_increase() -> None:
    inst = build(lambda d: d["clusters"][0]["pools"][0].update(
        capacity=[{"from": 2, "gpus": 4}, {"from": 4, "gpus": 16}]))
    assert rules(validate(inst, plan(run("a1", "cn1", "H800", 4, 2, 4),
                                     run("b1", "cn1", "H800", 4, 3, 4)))) == {4}
    assert is_valid(inst, plan(run("a1", "cn1", "H800", 4, 4, 6),
                               run("b1", "cn1", "H800", 4, 4, 5)))


def test_rule4_zero_capacity_pool() -> None:
    inst = build(lambda d: d["clusters"][1]["pools"][0].update(gpus=0))
    v = validate(inst, plan(run("b1", "sg1", "H800", 4, 0, 1)))
    assert [x.location for x in v] == ["capacity[sg1,H800,t=0]"]


# -- rule 5 -------------------------------------------------------------------------------
def test_rule5_dependency_not_run() -> None:
    inst = build()
    v = validate(inst, plan(run("a2", "cn1", "H20", 4, 2, 4)))
    assert rules(v) == {5}
    assert "a1" in v[0].message


def test_rule5_dependency_ends_after_start() -> None:
    inst = build()
    v = validate(inst, plan(run("a1", "cn1", "H800", 4, 0, 2), run("a2", "cn1", "H20", 4, 1, 3)))
    assert rules(v) == {5}
    assert v[0].location == "assignments[1]"
    # ending exactly when the dependant starts is fine
    assert is_valid(inst, plan(run("a1", "cn1", "H800", 4, 0, 2),
                               run("a2", "cn1", "H20", 4, 2, 4)))


# -- rule 6 -------------------------------------------------------------------------------
def test_rule6_credits() -> None:
    # alpha spends 80 (a1) + 40 (a2) = 120
    tight = build(lambda d: d["startups"][0].update(credits=119.9))
    v = validate(tight, plan(*good()))
    assert rules(v) == {6}
    assert v[0].location == "credits[alpha]"
    assert is_valid(build(lambda d: d["startups"][0].update(credits=120)), plan(*good()))


def test_rule6_spend_is_recomputed_not_taken_from_the_plan() -> None:
    tight = build(lambda d: d["startups"][0].update(credits=100))
    cheap = [a.model_copy(update={"cost": 1.0}) for a in good()]
    assert rules(validate(tight, plan(*cheap))) == {0, 6}


def test_rule6_unlimited_credits() -> None:
    inst = build(lambda d: d["startups"][1].update(credits=None))
    assert is_valid(inst, plan(*good()))


# -- rule 7 -------------------------------------------------------------------------------
def with_cap(**cap: Any) -> Instance:
    return build(lambda d: d.update(caps=[{"id": "k", **cap}]))


def test_rule7_per_period_tpp_with_country_scope() -> None:
    inst = with_cap(metric="tpp", per="period", limit=4 * 15832, countries=["CN"])
    assert is_valid(inst, plan(*good()))  # 4 H800 in CN in periods 0 and 1: at the limit
    v = validate(inst, plan(run("a1", "cn1", "H800", 4, 0, 2), run("b1", "cn1", "H800", 4, 1, 2)))
    assert rules(v) == {7}
    assert [x.location for x in v] == ["caps[k,t=1]"]


def test_rule7_horizon_gpu_hours_with_accelerator_scope() -> None:
    # H20 use in the good plan: a2, 4 GPUs x 2 periods x 10 h = 80 GPU-hours
    over = with_cap(metric="gpu_hours", per="horizon", limit=79, accelerators=["H20"])
    v = validate(over, plan(*good()))
    assert rules(v) == {7}
    assert v[0].location == "caps[k,t=0..5]"
    assert is_valid(with_cap(metric="gpu_hours", per="horizon", limit=80,
                             accelerators=["H20"]), plan(*good()))


def test_rule7_window() -> None:
    # GPUs in periods 1..2 of the good plan: a1 (4, period 1) + a2 (4, period 2) = 8
    v = validate(with_cap(metric="gpus", per="window", periods=[1, 2], limit=7), plan(*good()))
    assert [(x.rule, x.location) for x in v] == [(7, "caps[k,t=1..2]")]
    assert is_valid(with_cap(metric="gpus", per="window", periods=[1, 2], limit=8),
                    plan(*good()))
    assert is_valid(with_cap(metric="gpus", per="window", periods=[4, 5], limit=0),
                    plan(*good()))


def test_rule7_rolling() -> None:
    # GPUs per period: 8, 4, 4, 4, 0, 0; pairs: 12, 8, 8, 4, 0
    v = validate(with_cap(metric="gpus", per="rolling", length=2, limit=8), plan(*good()))
    assert [(x.rule, x.location) for x in v] == [(7, "caps[k,t=0..1]")]
    assert is_valid(with_cap(metric="gpus", per="rolling", length=2, limit=12), plan(*good()))


def test_rule7_share_cap() -> None:
    # beta may use at most half of all GPUs in use, in each period
    inst = with_cap(metric="gpus", per="period", startups=["beta"], share_of={}, fraction=0.5)
    assert is_valid(inst, plan(*good()))  # t=0: beta 4 of 8
    alone = [run("a1", "cn1", "H800", 4, 0, 2), run("b1", "sg1", "H800", 4, 2, 3)]
    v = validate(inst, plan(*alone))
    assert [(x.rule, x.location) for x in v] == [(7, "caps[k,t=2]")]
    assert "share_of" in v[0].message


def test_rule7_share_cap_with_limit() -> None:
    inst = with_cap(metric="gpus", per="period", startups=["beta"], limit=3,
                    share_of={"countries": ["SG", "CN"]}, fraction=1.0)
    v = validate(inst, plan(*good()))  # beta 4 > limit 3, though within its share
    assert [(x.rule, x.location) for x in v] == [(7, "caps[k,t=0]")]
    assert "limit" in v[0].message


def test_rule7_zero_limit_scope() -> None:
    inst = with_cap(metric="gpus", limit=0, startups=["beta"], export_classes=["3A090.a"])
    assert rules(validate(inst, plan(*good()))) == {7}
    assert is_valid(inst, plan(*good()[:2]))


def test_rule7_tolerance_is_relative() -> None:
    limit = 4 * 15832 * 3  # H800 TPP of a1 (2 periods) and b1 (1 period)
    ok = with_cap(metric="tpp", per="horizon", limit=limit * (1 - 1e-7))
    assert is_valid(ok, plan(*good()[::2]))
    over = with_cap(metric="tpp", per="horizon", limit=limit * (1 - 1e-5))
    assert rules(validate(over, plan(*good()[::2]))) == {7}


# -- rule 0 -------------------------------------------------------------------------------
def test_rule0_unknown_ids() -> None:
    inst = build()
    v = validate(inst, plan(*good(), run("zz", "cn1", "H800", 4, 0, 1),
                            unscheduled=["nope"]))
    assert {(x.rule, x.location) for x in v} == {(0, "assignments[3].job"),
                                                  (0, "unscheduled[0]")}
    v = validate(inst, plan(run("b1", "mars", "H800", 4, 0, 1)))
    assert (0, "assignments[0].cluster") in {(x.rule, x.location) for x in v}


def test_rule0_unknown_accelerator() -> None:
    v = validate(build(), plan(run("b1", "sg1", "H900", 4, 0, 1)))
    assert (0, "assignments[0].accelerator") in {(x.rule, x.location) for x in v}
    assert 1 in rules(v)


def test_rule0_job_in_both_lists_or_neither() -> None:
    inst = build()
    v = validate(inst, plan(*good(), unscheduled=["b1"]))
    assert [(x.rule, x.location) for x in v] == [(0, "unscheduled[0]")]
    v = validate(inst, plan(*good()[:2], unscheduled=[]))
    assert [(x.rule, x.location) for x in v] == [(0, "jobs[2]")]
    v = validate(inst, plan(unscheduled=["a1", "a2", "b1", "a1"]))
    assert [(x.rule, x.location) for x in v] == [(0, "unscheduled[3]")]


def test_rule0_wrong_cost_and_value() -> None:
    inst = build()
    v = validate(inst, plan(run("b1", "sg1", "H800", 4, 0, 1, cost=40.0)))
    assert [(x.rule, x.location) for x in v] == [(0, "assignments[0].cost")]
    v = validate(inst, plan(run("b1", "sg1", "H800", 4, 0, 1, value=30.0)))
    assert [(x.rule, x.location) for x in v] == [(0, "assignments[0].value")]


def test_rule0_wrong_objective() -> None:
    inst = build(lambda d: d.update(objective={"cost_weight": 0.1}))
    right = 33 - 0.1 * 200
    assert is_valid(inst, plan(*good(), objective=right))
    assert is_valid(inst, plan(*good(), objective=right * (1 + 1e-8)))
    v = validate(inst, plan(*good(), objective=33.0))
    assert [(x.rule, x.location) for x in v] == [(0, "objective")]


def test_every_violation_is_reported() -> None:
    inst = build(lambda d: d["startups"][0].update(credits=10))
    bad = plan(run("a2", "cn1", "H20", 4, 0, 2), run("b1", "cn1", "H800", 16, 0, 1),
               unscheduled=[])
    # a2: before release (3), a1 not run (5); b1: gpus (2) and capacity (4); alpha over
    # credits (6); a1 in neither list (0)
    assert rules(validate(inst, bad)) == {0, 2, 3, 4, 5, 6}


def test_large_plan() -> None:
    jobs = [{"id": f"j{i}", "startup": "alpha", "value": 1,
             "options": [{"accelerator": "H20", "gpus": 1, "periods": 2}]} for i in range(5000)]
    inst = build(lambda d: d.update(jobs=jobs, horizon={"periods": 52, "period_hours": HOURS}),
                 lambda d: d["startups"][0].update(credits=None),
                 lambda d: d["clusters"][0]["pools"][1].update(gpus=10_000),
                 lambda d: d.update(caps=[{"id": "k", "metric": "tpp", "per": "rolling",
                                           "length": 4, "limit": 1e9}]))
    assignments = [Assignment(job=f"j{i}", cluster="cn1", accelerator="H20", gpus=1,
                              start=i % 50, end=i % 50 + 2, cost=10.0, value=1.0)
                   for i in range(5000)]
    p = Plan(instance="tiny", status="feasible", assignments=assignments,
             objective=2.0 * 5000)
    assert validate(inst, p) == []
