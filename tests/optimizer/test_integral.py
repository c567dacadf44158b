"""The integral Lagrangian bound: proven at any prices, never above the LP at its duals."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance, SolveStatus
from gpualloc.optimizer import solve
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.stop import Stop
from gpualloc.optimizer.strategies.integral import integral_bound
from gpualloc.optimizer.strategies.lagrange import lagrangian_bound
from gpualloc.optimizer.strategies.lp import lp_relaxation
from tests.conftest import REL_TOL
from tests.strategies import random_instance

pytest.importorskip("highspy")
pytest.importorskip("ortools")

PROPERTY = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def tol(x: float) -> float:
    return REL_TOL * max(1.0, abs(x))


def budgeted() -> Instance:
    """Credits for one of two jobs, whichever: the LP runs both at a fraction, the bound not."""
    return Instance.model_validate({
        "name": "budgeted", "horizon": {"periods": 2, "period_hours": 10},
        "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
            {"accelerator": "H20", "gpus": 64, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s", "name": "S", "credits": 900}],
        "jobs": [
            {"id": "a", "startup": "s", "value": 10,
             "options": [{"accelerator": "H20", "gpus": 60, "periods": 1}]},
            {"id": "b", "startup": "s", "value": 9,
             "options": [{"accelerator": "H20", "gpus": 50, "periods": 1}]}]})


def test_a_budget_is_kept_whole() -> None:
    model = build(budgeted())
    lp = lp_relaxation(model, 10.0)
    assert lp.bound is not None and lp.bound > 10.0 + 1e-6  # a fraction of the second job
    out = integral_bound(model, lp.prices)
    assert out.bound == pytest.approx(10.0, rel=1e-6) and out.groups == 1 and out.proven == 1
    plan = solve(budgeted(), "cpsat", time_limit=10)
    assert plan.objective == pytest.approx(10.0)


def test_no_prices_or_a_stop_still_gives_a_valid_answer() -> None:
    model = build(budgeted())
    assert integral_bound(model, None).bound is None
    stopped = Stop(None)
    stopped.request()
    out = integral_bound(model, [0.0] * len(model.rows), stopped)
    assert out.bound is not None and out.bound >= 10.0 - tol(10.0)  # groups relaxed, valid
    assert out.proven == 0


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), jobs=st.integers(3, 10), periods=st.integers(2, 6),
       noise=st.integers(0, 2**31 - 1))
def test_bound_is_proven_on_random_instances(seed: int, jobs: int, periods: int,
                                             noise: int) -> None:
    """At the LP's duals, the Lagrangian's prices and random prices it is at least the exact
    optimum; at the LP's duals at most the LP's bound."""
    instance = random_instance(seed, jobs=jobs, periods=periods)
    model = build(instance)
    plan = solve(instance, "cpsat", time_limit=10.0, workers=1)
    if plan.status != SolveStatus.OPTIMAL:
        return
    optimum = plan.objective
    lp = lp_relaxation(model, 10.0)
    rng = random.Random(noise)
    prices = {"lp": lp.prices, "lagrangian": lagrangian_bound(model, 5.0).prices,
              "random": [rng.uniform(-2.0, 2.0) for _ in model.rows]}
    assert lp.prices is not None or model.num_vars == 0
    for name, y in prices.items():
        if y is None:  # no variables: nothing to price
            continue
        out = integral_bound(model, y)
        assert out.bound is not None, name
        assert out.bound >= optimum - tol(optimum), (name, out, optimum)
    if lp.prices is not None and lp.bound is not None:
        assert integral_bound(model, lp.prices).bound <= lp.bound + tol(lp.bound)
        stopped = Stop(None)  # every group cut short: each falls back to its LP share
        stopped.request()
        cut = integral_bound(model, lp.prices, stopped).bound
        assert cut is not None and optimum - tol(optimum) <= cut <= lp.bound + tol(lp.bound)
