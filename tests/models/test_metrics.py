"""Plan metrics, checked against figures worked out by hand on a tiny instance."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpualloc.models import Assignment, Instance, Plan
from gpualloc.models.metrics import plan_metrics

TPP_H800, TPP_H20 = 15832, 2368
DATA: dict[str, Any] = {
    "name": "tiny",
    "horizon": {"periods": 4, "period_hours": 10},
    "clusters": [
        {"id": "cn1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0,
             "capacity": [{"from": 2, "gpus": 4}]},
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 0.5},
        ]},
        {"id": "sg1", "region": "south", "country": "SG", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0},
            {"accelerator": "H20", "gpus": 0, "price_per_gpu_hour": 1.0},
        ]},
    ],
    "startups": [
        {"id": "alpha", "credits": 1000, "weight": 2.0},
        {"id": "beta", "weight": 1.0},
        {"id": "gamma", "credits": 0},
    ],
    "jobs": [
        {"id": "a1", "startup": "alpha", "value": 10, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 2},
            {"accelerator": "H20", "gpus": 8, "periods": 3, "value": 7}]},
        {"id": "a2", "startup": "alpha", "value": 5, "after": ["a1"], "options": [
            {"accelerator": "H20", "gpus": 4, "periods": 2}]},
        {"id": "a3", "startup": "alpha", "value": 1, "options": [
            {"accelerator": "H20", "gpus": 1, "periods": 1}]},
        {"id": "b1", "startup": "beta", "value": 3, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 1}]},
    ],
    "caps": [
        {"id": "win", "metric": "gpus", "per": "window", "periods": [1, 2], "limit": 8},
        {"id": "share", "metric": "gpus", "per": "period", "startups": ["beta"],
         "share_of": {}, "fraction": 0.5},
        {"id": "both", "metric": "gpus", "per": "period", "startups": ["beta"], "limit": 3,
         "share_of": {}, "fraction": 0.5},
        {"id": "tpp", "metric": "tpp", "per": "horizon", "limit": 1e6},
        {"id": "roll", "metric": "gpu_hours", "per": "rolling", "length": 3, "limit": 200,
         "countries": ["CN"]},
    ],
    "objective": {"cost_weight": 0.1},
}


@pytest.fixture
def instance() -> Instance:
    return Instance.model_validate(DATA)


@pytest.fixture
def plan() -> Plan:
    # a1 on cn1 H800 in periods 0-1 (cost 4*2*10*1.0 = 80), a2 on cn1 H20 in 2-3 (4*2*10*0.5
    # = 40), b1 on sg1 H800 in 0 (4*1*10*2.0 = 80); a3 unscheduled.
    return Plan(instance="tiny", status="feasible", unscheduled=("a3",), assignments=(
        Assignment(job="a1", cluster="cn1", accelerator="H800", gpus=4, start=0, end=2,
                   cost=80, value=10),
        Assignment(job="a2", cluster="cn1", accelerator="H20", gpus=4, start=2, end=4,
                   cost=40, value=5),
        Assignment(job="b1", cluster="sg1", accelerator="H800", gpus=4, start=0, end=1,
                   cost=80, value=3),
    ))


def test_totals_and_objective(instance: Instance, plan: Plan) -> None:
    m = plan_metrics(instance, plan)
    assert m["total_cost"] == pytest.approx(200)
    assert m["total_value"] == pytest.approx(18)
    assert m["total_weighted_value"] == pytest.approx(2 * 15 + 3)
    assert m["objective"] == pytest.approx(33 - 0.1 * 200)


_BASIC = ("jobs_run", "jobs_asked", "value", "weighted_value", "spend", "credits",
          "spend_share")


def test_startups(instance: Instance, plan: Plan) -> None:
    s = {sid: {k: v[k] for k in _BASIC}
         for sid, v in plan_metrics(instance, plan)["startups"].items()}
    assert s["alpha"] == pytest.approx({"jobs_run": 2, "jobs_asked": 3, "value": 15,
                                        "weighted_value": 30, "spend": 120, "credits": 1000,
                                        "spend_share": 0.12})
    assert s["beta"] == {"jobs_run": 1, "jobs_asked": 1, "value": 3, "weighted_value": 3,
                         "spend": 80, "credits": None, "spend_share": None}
    assert s["gamma"] == {"jobs_run": 0, "jobs_asked": 0, "value": 0, "weighted_value": 0,
                          "spend": 0, "credits": 0, "spend_share": None}


def test_value_is_the_options(instance: Instance) -> None:
    p = Plan(instance="tiny", status="feasible", assignments=(
        Assignment(job="a1", cluster="cn1", accelerator="H20", gpus=8, start=0, end=3,
                   cost=120, value=7),))
    m = plan_metrics(instance, p)
    assert m["startups"]["alpha"]["value"] == 7
    assert m["startups"]["alpha"]["spend"] == 120
    assert m["objective"] == pytest.approx(2 * 7 - 0.1 * 120)


def test_pools(instance: Instance, plan: Plan) -> None:
    pools = plan_metrics(instance, plan)["pools"]
    assert set(pools) == {"cn1/H800", "cn1/H20", "sg1/H800", "sg1/H20"}
    assert pools["cn1/H800"] == {"capacity": [8, 8, 4, 4], "used": [4, 4, 0, 0],
                                 "utilization": [0.5, 0.5, 0.0, 0.0],
                                 "mean_utilization": 0.25}
    assert pools["cn1/H20"]["used"] == [0, 0, 4, 4]
    assert pools["cn1/H20"]["utilization"] == [0, 0, 0.25, 0.25]
    assert pools["cn1/H20"]["mean_utilization"] == pytest.approx(0.125)
    assert pools["sg1/H800"]["utilization"] == [0.5, 0, 0, 0]
    assert pools["sg1/H20"] == {"capacity": [0, 0, 0, 0], "used": [0, 0, 0, 0],
                                "utilization": [None] * 4, "mean_utilization": None}


def test_window_cap(instance: Instance, plan: Plan) -> None:
    cap = plan_metrics(instance, plan)["caps"]["win"]
    # periods 1..2: a1 has 4 GPUs in period 1, a2 4 in period 2
    assert cap == {"metric": "gpus", "per": "window", "limit": 8,
                   "windows": [{"periods": [1, 2], "use": 8, "limit": 8, "binding": True}],
                   "peak_use": 8, "peak_limit": 8}


def test_share_caps(instance: Instance, plan: Plan) -> None:
    caps = plan_metrics(instance, plan)["caps"]
    # all GPUs per period: 8, 4, 4, 4; beta's: 4, 0, 0, 0
    share = caps["share"]
    assert share["limit"] is None
    assert [w["periods"] for w in share["windows"]] == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert [w["use"] for w in share["windows"]] == [4, 0, 0, 0]
    assert [w["limit"] for w in share["windows"]] == [4, 2, 2, 2]
    assert [w["binding"] for w in share["windows"]] == [True, False, False, False]
    assert (share["peak_use"], share["peak_limit"]) == (4, 4)
    both = caps["both"]
    assert [w["limit"] for w in both["windows"]] == [3, 2, 2, 2]
    assert both["windows"][0]["binding"]  # 4 over 3: an over-full window is binding too


def test_horizon_and_rolling_caps(instance: Instance, plan: Plan) -> None:
    caps = plan_metrics(instance, plan)["caps"]
    tpp = caps["tpp"]
    use = 4 * TPP_H800 * 2 + 4 * TPP_H20 * 2 + 4 * TPP_H800
    assert tpp["windows"] == [{"periods": [0, 3], "use": pytest.approx(use), "limit": 1e6,
                               "binding": False}]
    assert tpp["peak_use"] == pytest.approx(use)
    roll = caps["roll"]
    # GPU-hours in CN per period: 40, 40, 40, 40 -> every 3 periods 120
    assert [w["periods"] for w in roll["windows"]] == [[0, 2], [1, 3]]
    assert [w["use"] for w in roll["windows"]] == [120, 120]
    assert not any(w["binding"] for w in roll["windows"])


def test_empty_plan(instance: Instance) -> None:
    m = plan_metrics(instance, Plan(instance="tiny", status="infeasible"))
    assert m["objective"] == 0 and m["total_cost"] == 0 and m["total_value"] == 0
    assert m["startups"]["alpha"]["jobs_run"] == 0
    assert m["pools"]["cn1/H800"]["mean_utilization"] == 0
    share = m["caps"]["share"]["windows"]
    assert all(w["use"] == 0 and w["limit"] == 0 and w["binding"] for w in share)
    assert m["caps"]["win"]["windows"][0]["binding"] is False


def test_json_serialisable(instance: Instance, plan: Plan) -> None:
    m = plan_metrics(instance, plan)
    assert json.loads(json.dumps(m, allow_nan=False)) == m
