"""The Lagrangian bound: proven, tight on a hand instance, time-limited; priced greedy orders."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance, SolveStatus, load_instance
from gpualloc.optimizer import solve
from gpualloc.optimizer.backends import SolveParams, get_backend
from gpualloc.optimizer.backends.greedy import greedy_values
from gpualloc.optimizer.model.formulation import LinearModel, build
from gpualloc.optimizer.model.replan import prepare
from gpualloc.optimizer.stop import Stop
from gpualloc.optimizer.strategies.lagrange import lagrangian_bound, priced_order
from gpualloc.optimizer.strategies.lp import lp_relaxation
from tests.conftest import REL_TOL
from tests.strategies import random_instance

pytest.importorskip("highspy")
pytest.importorskip("ortools")

PORTFOLIO = Path(__file__).resolve().parents[2] / "instances" / "portfolio.yaml"
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def tol(x: float) -> float:
    return REL_TOL * max(1.0, abs(x))


def lagrangian_of(model: LinearModel, prices: list[float]) -> tuple[float, list[float]]:
    """``L(y)`` and ``c - A'y`` recomputed from the rows, independently of the module."""
    reduced = list(model.objective)
    for row, y in zip(model.rows, prices, strict=True):
        for v, c in zip(row.vars, row.coefs, strict=True):
            reduced[v] -= y * c
    forced = model.forced_jobs()
    total = sum(y * row.rhs for row, y in zip(model.rows, prices, strict=True))
    for job, idx in model.by_job.items():
        if idx:
            best = max(reduced[i] for i in idx)
            total += best if job in forced else max(0.0, best)
    return total, reduced


def assert_proven(model: LinearModel, optimum: float | None) -> float:
    """The bound is at least ``optimum`` and the LP optimum, at most the trivial bound, and it
    is the Lagrangian value of the returned prices (which have valid signs)."""
    result = lagrangian_bound(model, 5.0)
    assert result.bound is not None and result.prices is not None
    assert result.reduced is not None and result.iterations >= 1
    if optimum is not None:
        assert result.bound >= optimum - tol(optimum)
    lp = lp_relaxation(model, 10.0)
    assert lp.objective is not None
    assert result.bound >= lp.objective - tol(lp.objective)
    assert result.bound <= model.trivial_bound() + tol(model.trivial_bound())
    for row, y in zip(model.rows, result.prices, strict=True):
        assert {"<=": y >= 0.0, ">=": y <= 0.0, "==": True}[row.sense], (row.name, y)
    value, reduced = lagrangian_of(model, result.prices)
    assert value <= result.bound <= value + 1e-6 * max(1.0, abs(value))
    assert result.reduced == pytest.approx(reduced, rel=1e-9, abs=1e-9)
    return result.bound


# -- (1) a proven bound on random instances ----------------------------------------------------
@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), jobs=st.integers(3, 10), periods=st.integers(2, 6))
def test_bound_is_proven_on_random_instances(seed: int, jobs: int, periods: int) -> None:
    instance = random_instance(seed, jobs=jobs, periods=periods)
    plan = solve(instance, "cpsat", time_limit=10.0)
    optimum = plan.objective if plan.status == SolveStatus.OPTIMAL else None
    assert_proven(build(instance), optimum)


@pytest.mark.parametrize("seed", [3, 8])
def test_bound_is_proven_when_replanning(seed: int) -> None:
    # Re-planning adds assignment rows the subproblem does not keep (frozen placements,
    # nothing before `now`): they are relaxed like the other rows.
    instance = random_instance(seed, jobs=8, periods=5)
    previous = solve(instance, "cpsat", time_limit=10.0)
    model = build(instance)
    prepare(instance, model, previous, now=2, stability=0.5)
    assert any(r.kind == "assign" and r.name.startswith("before-now") for r in model.rows)
    raw = get_backend("cpsat").solve(model, SolveParams(time_limit=10.0))
    assert raw.status == "optimal" and raw.values is not None
    assert_proven(model, model.objective_value(raw.values))


# -- (2) close to the LP optimum on a hand instance --------------------------------------------
def _hand_instance() -> Instance:
    # One pool of 8 GPUs over 2 periods; three 1-period jobs of 5 GPUs (values 10, 9, 8) cost
    # 5 credits each, and the start-up has 12. Capacity (8 per period, 16 in all) is not what
    # binds the LP: credits are, 12 / 5 = 2.4 jobs -> LP = 10 + 9 + 0.4 * 8 = 22.2 (integer 19).
    def job(ident: str, value: float) -> dict[str, Any]:
        return {"id": ident, "startup": "s", "value": value,
                "options": [{"accelerator": "H100", "gpus": 5, "periods": 1}]}

    return Instance.model_validate({
        "name": "hand", "horizon": {"periods": 2, "period_hours": 1.0},
        "clusters": [{"id": "c1", "region": "r1", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s", "credits": 12.0}],
        "jobs": [job("a", 10), job("b", 9), job("c", 8)],
    })


def test_bound_reaches_the_lp_optimum_on_a_hand_instance() -> None:
    model = build(_hand_instance(), roundings=False)
    assert {r.kind for r in model.rows} == {"assign", "capacity", "credits"}
    lp = lp_relaxation(model, 10.0)
    assert lp.objective == pytest.approx(22.2, rel=1e-7)
    result = lagrangian_bound(model, 5.0)
    assert result.bound is not None
    assert 22.2 - 1e-9 <= result.bound <= 22.2 * 1.01
    credits = next(k for k, r in enumerate(model.rows) if r.kind == "credits")
    assert result.prices[credits] == pytest.approx(8 / 5, rel=0.05)  # the LP's credit price


# -- (3) time limit, stop request, determinism ------------------------------------------------
@pytest.fixture(scope="module")
def portfolio() -> LinearModel:
    return build(load_instance(PORTFOLIO))


def test_time_limit_is_honoured(portfolio: LinearModel) -> None:
    began = time.perf_counter()
    result = lagrangian_bound(portfolio, 0.2, max_iterations=10**9)
    assert time.perf_counter() - began <= 1.0
    assert result.seconds <= 1.0 and result.iterations >= 1
    assert result.bound is not None and result.bound <= portfolio.trivial_bound() + 1e-6


def test_zero_time_gives_the_trivial_bound_and_a_stop_skips_the_set_up(
        portfolio: LinearModel) -> None:
    result = lagrangian_bound(portfolio, 0.0)
    assert result.iterations == 1
    assert result.bound == pytest.approx(portfolio.trivial_bound(), rel=1e-8)
    stopped = lagrangian_bound(portfolio, None, stop=_requested())  # set-up stops: no bound
    assert (stopped.bound, stopped.prices, stopped.reduced, stopped.iterations) == \
        (None, None, None, 0)


def test_deterministic_and_target_stops_early(portfolio: LinearModel) -> None:
    a = lagrangian_bound(portfolio, None, max_iterations=300)
    b = lagrangian_bound(portfolio, None, max_iterations=300)
    assert (a.bound, a.prices, a.iterations) == (b.bound, b.prices, b.iterations)
    assert a.iterations == 300
    # a target above every bound the search can reach ends it at once
    early = lagrangian_bound(portfolio, None, target=portfolio.trivial_bound() + 1.0)
    assert early.iterations == 1


# -- (4) forced jobs: counted at a loss; infeasible models -------------------------------------
def test_forced_job_counts_even_at_a_loss() -> None:
    # cost_weight 1, 1 credit per GPU-period: mandatory m earns 1 - 2 = -1, optional o 10 - 4.
    # Nothing is shared (2 + 4 <= 8 GPUs), so the bound is the optimum, 5, not 6.
    def job(ident: str, value: float, gpus: int, **extra: Any) -> dict[str, Any]:
        return {"id": ident, "startup": "s", "value": value, **extra,
                "options": [{"accelerator": "H100", "gpus": gpus, "periods": 1}]}

    model = build(Instance.model_validate({
        "name": "loss", "horizon": {"periods": 1, "period_hours": 1.0},
        "clusters": [{"id": "c1", "region": "r1", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s"}], "objective": {"cost_weight": 1.0},
        "jobs": [job("m", 1, 2, mandatory=True), job("o", 10, 4)],
    }))
    assert model.forced_jobs() == {"m"} and sorted(model.objective) == [-1.0, 6.0]
    assert lagrangian_bound(model).bound == pytest.approx(5.0, rel=1e-8)



def test_forced_job_without_placement_gives_no_bound() -> None:
    instance = _hand_instance().model_copy(deep=True)
    doc = instance.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc["jobs"].append({"id": "big", "startup": "s", "value": 1, "mandatory": True,
                        "options": [{"accelerator": "H100", "gpus": 16, "periods": 1}]})
    model = build(Instance.model_validate(doc))
    assert model.by_job["big"] == [] and model.infeasible
    assert lagrangian_bound(model).bound is None
    model.infeasible = []  # the empty "== 1" row alone proves it
    result = lagrangian_bound(model)
    assert result.bound is None and result.prices is None and result.reduced is None


# -- (5) priced greedy order -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 5, 9])
def test_priced_greedy_is_feasible(seed: int) -> None:
    model = build(random_instance(seed, jobs=10, periods=5))
    result = lagrangian_bound(model, 2.0)
    order = priced_order(model, result.reduced)
    assert sorted(order) == list(range(model.num_vars))
    values = greedy_values(model, order=order)
    assert model.check(values) == []


def test_priced_greedy_on_portfolio(portfolio: LinearModel) -> None:
    result = lagrangian_bound(portfolio, 2.0)
    values = greedy_values(portfolio, order=priced_order(portfolio, result.reduced))
    assert portfolio.check(values) == []
    assert portfolio.objective_value(values) <= result.bound


def _requested() -> Stop:
    stop = Stop(None)
    stop.request()
    return stop
