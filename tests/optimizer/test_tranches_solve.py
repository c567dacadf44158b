"""Tranches and floors through every backend, the greedy, the LP and the Lagrangian bound."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance, SolveStatus, load_instance
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.strategies.lagrange import lagrangian_bound
from gpualloc.optimizer.strategies.lp import lp_relaxation
from tests.conftest import ALL_BACKENDS, EXACT_BACKENDS, close, solve_checked
from tests.strategies import random_instance

pytest.importorskip("highspy")
REPO = Path(__file__).resolve().parents[2]
SMALL = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def with_tranches(instance: Instance, seed: int, floor: bool = False) -> Instance:
    """Every start-up with credits gets two random tranches summing to them (some without
    carry-over); with ``floor``, the first start-up a small ``min_share``."""
    rng = random.Random(seed)
    data = instance.model_dump(by_alias=True)
    periods = instance.horizon.periods
    for s in data["startups"]:
        if s["credits"] is None:
            continue
        first = round(s["credits"] * rng.choice((0.2, 0.5, 0.8)), 2)
        s["tranches"] = [{"from": rng.choice((0, 1)), "credits": first},
                         {"from": rng.randint(2, periods - 1), "credits": s["credits"] - first}]
        s["credits"] = None
        s["carry_over"] = rng.random() < 0.6
    if floor:
        data["startups"][0]["min_share"] = 0.2
    return Instance.model_validate(data)


@SMALL
@given(seed=st.integers(0, 2**31 - 1), floor=st.booleans())
def test_backends_agree_with_tranches(seed: int, floor: bool) -> None:
    inst = with_tranches(random_instance(seed, jobs=6, periods=5), seed, floor)
    plans = {b: solve_checked(inst, b) for b in ALL_BACKENDS}
    exact = [plans[b] for b in EXACT_BACKENDS]
    statuses = {p.status for p in exact}
    assert len(statuses) == 1, {b: p.status for b, p in plans.items()}
    if statuses == {SolveStatus.OPTIMAL}:
        best = exact[0].objective
        assert all(close(p.objective, best) for p in exact)
        model = build(inst)
        lp = lp_relaxation(model, 10.0)
        assert lp.objective is not None and lp.objective >= best - 1e-6 * max(1, abs(best))
        lag = lagrangian_bound(model, 5.0)
        assert lag.bound is not None and lag.bound >= best - 1e-6 * max(1, abs(best))


def test_bundled_portfolio_with_tranches_moves_jobs() -> None:
    """The tranches bind: value is lost against the lump sums, and the plan is valid."""
    base = solve_checked(load_instance(REPO / "instances" / "portfolio.yaml"), "cpsat")
    inst = load_instance(REPO / "instances" / "portfolio-tranches.yaml")
    plan = solve_checked(inst, "cpsat")
    assert plan.status == SolveStatus.OPTIMAL and base.status == SolveStatus.OPTIMAL
    assert plan.objective < base.objective
    assert any(r.kind == "tranche" for r in build(inst).rows)
    before = {a.job: a.start for a in base.assignments}
    assert any(a.job in before and a.start > before[a.job] for a in plan.assignments)
