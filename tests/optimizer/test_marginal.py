"""Marginal values, the credits the fleet can honour, and the cap report, on tiny instances
worked by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gpualloc.analysis.credits import honourable_credits, solve_custom, without_credits
from gpualloc.analysis.marginal import (
    cap_report,
    lp_relaxation_duals,
    marginal_values,
    period_ranges,
)
from gpualloc.models import Instance
from gpualloc.models.scenarios import apply
from gpualloc.models.validator import validate


def _job(jid: str, startup: str, value: float, acc: str, gpus: int = 8, periods: int = 1,
         **kw: Any) -> dict[str, Any]:
    return {"id": jid, "startup": startup, "value": value,
            "options": [{"accelerator": acc, "gpus": gpus, "periods": periods}], **kw}


# Two periods of one hour, every price 1 (a job of 8 GPUs for 1 period costs 8).
#  - c1/H100 (24 GPUs) could run h1, h2, h3 (10, 6, 6) but the cap c1cap allows 16
#    GPU-periods: h1 and one of h2/h3 run (16). Cap +8 -> the other runs: +6, 0.75 per GPU.
#  - c2/A100 (8 GPUs) runs a1 (5) and one of a2/a3 (2, 2). +8 GPUs in one period -> the other
#    runs: +2 over 8 GPU-periods, 0.25 per GPU-period, in either half.
#  - c3/L20 (16 GPUs): s1 (credits 8) runs one of k1/k2 (4, 4); +8 credits -> +4, 0.5 per
#    credit. s3 (credits 10) runs one of m1/m2 (1, 1); +8 credits -> +1, 0.125 per credit.
#  Base optimum 10 + 6 + 5 + 2 + 4 + 1 = 28. The LP duals equal these figures (ties make
#  them unique).
MARGINAL: dict[str, Any] = {
    "name": "marginal",
    "horizon": {"periods": 2, "period_hours": 1},
    "clusters": [
        {"id": "c1", "region": "r", "country": "US",
         "pools": [{"accelerator": "H100", "gpus": 24, "price_per_gpu_hour": 1}]},
        {"id": "c2", "region": "r", "country": "US",
         "pools": [{"accelerator": "A100", "gpus": 8, "price_per_gpu_hour": 1}]},
        {"id": "c3", "region": "r", "country": "US",
         "pools": [{"accelerator": "L20", "gpus": 16, "price_per_gpu_hour": 1}]},
    ],
    "startups": [{"id": "s1", "credits": 8}, {"id": "s2"}, {"id": "s3", "credits": 10}],
    "jobs": [
        _job("h1", "s2", 10, "H100"), _job("h2", "s2", 6, "H100"), _job("h3", "s2", 6, "H100"),
        _job("a1", "s2", 5, "A100"), _job("a2", "s2", 2, "A100"), _job("a3", "s2", 2, "A100"),
        _job("k1", "s1", 4, "L20"), _job("k2", "s1", 4, "L20"),
        _job("m1", "s3", 1, "L20"), _job("m2", "s3", 1, "L20"),
    ],
    "caps": [
        {"id": "c1cap", "metric": "gpus", "per": "horizon", "limit": 16, "clusters": ["c1"]},
        {"id": "loose", "metric": "gpus", "per": "period", "limit": 100, "clusters": ["c2"]},
    ],
}


@pytest.fixture(scope="module")
def inst() -> Instance:
    return Instance.model_validate(copy.deepcopy(MARGINAL))


@pytest.fixture(scope="module")
def values(inst: Instance) -> list[Any]:
    return marginal_values(inst, time_limit=20)


def test_period_ranges() -> None:
    assert period_ranges(26, 2) == [range(0, 13), range(13, 26)]
    assert [len(r) for r in period_ranges(26, 4)] == [6, 7, 6, 7]
    assert period_ranges(2, 4) == [range(0, 1), range(1, 2)]


def test_marginal_values_by_hand(inst: Instance, values: list[Any]) -> None:
    by = {(v.kind, v.item): v for v in values}
    # pools: only c2/A100 gains, 0.25 per GPU-period in either half
    for half in ("[0-0]", "[1-1]"):
        v = by[("pool", f"c2/A100 {half}")]
        assert (v.delta, v.units_added, v.gain) == (8, 8.0, pytest.approx(2.0))
        assert v.value_per_unit == pytest.approx(0.25) and v.rank in (1, 2)
        assert v.lp_dual == pytest.approx(0.25)
        assert by[("pool", f"c1/H100 {half}")].gain == pytest.approx(0.0)
        assert by[("pool", f"c3/L20 {half}")].gain == pytest.approx(0.0)
        assert by[("pool", f"c1/H100 {half}")].rank == 0
    # caps: c1cap 0.75 per GPU (the cap's metric); the loose one is worth nothing
    cap = by[("cap", "c1cap")]
    assert (cap.unit, cap.delta, cap.rank) == ("GPU", 8.0, 1)
    assert cap.value_per_unit == pytest.approx(0.75) and cap.lp_dual == pytest.approx(0.75)
    assert by[("cap", "loose")].value_per_unit == pytest.approx(0.0)
    assert by[("cap", "loose")].rank == 0  # gains nothing: unranked, listed apart
    # credits: s1 0.5 > s3 0.125; s2 has no limit and is not ranked
    credits = [v for v in values if v.kind == "credits"]
    assert [(v.item, v.rank) for v in credits] == [("s1", 1), ("s3", 2)]
    assert credits[0].value_per_unit == pytest.approx(0.5)
    assert credits[1].value_per_unit == pytest.approx(0.125)
    assert credits[0].lp_dual == pytest.approx(0.5)
    assert credits[1].lp_dual == pytest.approx(0.125)
    # zero-gain rows come after the ranked ones, in resource then numeric period order
    pools = [v for v in values if v.kind == "pool"]
    assert [v.rank for v in pools] == [1, 2, 0, 0, 0, 0]
    assert [(v.target, v.periods) for v in pools[2:]] == [
        ("c1/H100", (0, 0)), ("c1/H100", (1, 1)), ("c3/L20", (0, 0)), ("c3/L20", (1, 1))]
    # signs, order within kinds, and every re-solve's plan is valid where it was solved
    assert [v.kind for v in values] == sorted((v.kind for v in values),
                                              key=["pool", "cap", "credits"].index)
    for v in values:
        assert v.gain is not None and v.gain >= -1e-9
        assert v.status == "optimal"
        assert v.plan is not None and validate(apply(inst, v.changes), v.plan) == []


def test_without_the_quantum_small_steps_gain_nothing(inst: Instance) -> None:
    vals = marginal_values(inst, time_limit=20, quantum=False, lp_duals=False, splits=1)
    pool = next(v for v in vals if v.item == "c2/A100 [0-1]")
    assert pool.delta == 1 and pool.gain == pytest.approx(0.0) and pool.lp_dual is None


def test_lp_duals_names(inst: Instance) -> None:
    duals = lp_relaxation_duals(inst)
    assert duals is not None
    assert duals["cap[c1cap,0-1]"] == pytest.approx(0.75)
    assert duals["credits[s1]"] == pytest.approx(0.5)
    assert all(v >= -1e-9 for k, v in duals.items() if not k.startswith("after"))


def test_cap_report(inst: Instance) -> None:
    rep = cap_report(inst, time_limit=20)
    assert rep.plan.objective == pytest.approx(28.0)
    assert validate(inst, rep.plan) == []
    lines = {line.cap: line for line in rep.lines}
    assert lines["c1cap"].binding == 1 and lines["c1cap"].windows[0]["use"] == 16
    # 10% looser: 17.6 GPU-periods still fit no third 8-GPU job
    assert lines["c1cap"].looser_gain == pytest.approx(0.0)
    assert lines["c1cap"].looser_status == "optimal"
    assert lines["loose"].binding == 0 and lines["loose"].looser_status is None
    # 50% looser: 24 -> the third job runs (+6); the report reuses the plan it is given
    rep = cap_report(inst, rep.plan, time_limit=20, loosen=0.5)
    line = next(x for x in rep.lines if x.cap == "c1cap")
    assert line.looser_gain == pytest.approx(6.0)
    looser = apply(inst, [{"kind": "cap", "id": "c1cap", "scale": 1.5}])
    assert line.looser_plan is not None and validate(looser, line.looser_plan) == []


# One pool of 8 H100 for 3 periods (24 GPU-periods), price 1 per GPU-hour, 1-hour periods.
#  A (credits 10): a1 8x2 (value 5, cost 16), a2 4x1 (value 1, cost 4).
#  B (credits 100): b1 8x1 mandatory (value 1, cost 8), b2 8x2 (value 10, cost 16).
# Optimal plan: b1 + b2 = 11 fills the pool: A spends 0, B 24.
# H_A: A unlimited, maximise A's spend: b1 must run (8 of the 24), a1 takes the other two
#   periods: 16 (a2 finds no room). Headroom 16 - 10 = +6.
# H_B = 24 (b1 + b2 fill the pool): headroom 24 - 100 = -76. Fleet maximum: 24.
CREDITS: dict[str, Any] = {
    "name": "credits",
    "horizon": {"periods": 3, "period_hours": 1},
    "clusters": [{"id": "c", "region": "r", "country": "US",
                  "pools": [{"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 1}]}],
    "startups": [{"id": "A", "credits": 10}, {"id": "B", "credits": 100}],
    "jobs": [
        _job("a1", "A", 5, "H100", 8, 2), _job("a2", "A", 1, "H100", 4, 1),
        _job("b1", "B", 1, "H100", 8, 1, mandatory=True), _job("b2", "B", 10, "H100", 8, 2),
    ],
}


def test_honourable_credits_by_hand() -> None:
    inst = Instance.model_validate(copy.deepcopy(CREDITS))
    rep = honourable_credits(inst, time_limit=20)
    assert rep.plan.objective == pytest.approx(11.0)
    assert validate(inst, rep.plan) == []
    a, b = rep.lines
    assert (a.startup, a.credits, a.spend) == ("A", 10, 0.0)
    assert (a.honourable, a.status, a.headroom, a.unused) == (16.0, "optimal", 6.0, 10.0)
    assert a.honourable_bound == pytest.approx(16.0)
    assert (b.spend, b.honourable, b.headroom, b.unused) == (24.0, 24.0, -76.0, 76.0)
    assert rep.fleet_max == 24.0 and rep.fleet_status == "optimal"
    assert rep.total_credits == 110 and rep.total_honourable == 40
    # each H_s plan is valid once s's own limit is removed, and runs the mandatory job
    for line in rep.lines:
        assert line.plan is not None
        assert validate(without_credits(inst, [line.startup]), line.plan) == []
        assert line.plan.assignment("b1") is not None


def test_solve_custom_objective() -> None:
    inst = Instance.model_validate(copy.deepcopy(CREDITS))
    # the most GPU-periods of H100 any valid plan uses: the whole pool
    res = solve_custom(inst, lambda p: p.gpus * p.periods, time_limit=20)
    assert res.status == "optimal" and res.value == 24
    assert res.plan is not None and validate(inst, res.plan) == []
