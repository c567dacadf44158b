"""The LP relaxation by column generation: its optimum and its always-valid bound."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings

from gpualloc.optimizer import solve
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.strategies.lp import LpRun, lp_relaxation
from gpualloc.sources.generate import generate
from tests.conftest import close
from tests.optimizer.test_backends import lp_relaxation as full_lp
from tests.strategies import instances

pytest.importorskip("highspy")


@pytest.fixture(scope="module")
def model():
    return build(generate(4, 5, 60, 12, seed=3))


def test_column_generation_reaches_the_full_lp_optimum(model):
    expected, _ = full_lp(model)
    lp = lp_relaxation(model, 60)
    assert lp.status == "optimal"
    assert close(lp.objective, expected, 1e-6)
    assert lp.bound >= expected - 1e-6 * abs(expected)
    assert close(lp.bound, expected, 1e-5)
    assert len(lp.columns) < model.num_vars  # it did not need every column
    assert model.check([1.0 if v > 1 - 1e-6 else 0.0 for v in lp.values]) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances(jobs=14, periods=6))
def test_bound_is_at_least_the_lp_and_the_optimum(instance):
    model = build(instance)
    if model.infeasible or not model.num_vars:
        return
    plan = solve(instance, "cpsat", time_limit=20, strategy="exact")
    lp = lp_relaxation(model, 20)
    if lp.status == "infeasible":  # then so is the integer model
        assert plan.status.value == "infeasible" and lp.bound is None
        return
    assert lp.status == "optimal"
    expected, _ = full_lp(model)
    assert lp.bound >= expected - 1e-6 * max(1.0, abs(expected))
    if plan.status.value == "optimal":
        offset = model.objective_offset
        assert lp.bound + offset >= plan.objective - 1e-6 * max(1.0, abs(plan.objective))


def test_bound_stays_valid_when_stopped_early(model):
    expected, _ = full_lp(model)
    for limit in (0.05, 0.3):
        lp = lp_relaxation(model, limit)
        assert lp.bound is None or lp.bound >= expected - 1e-6 * abs(expected)


def test_cancel_before_solving_returns_no_bound(model):
    run = LpRun()
    run.cancel()
    began = time.perf_counter()
    lp = run.solve(model, 30)
    assert time.perf_counter() - began < 5
    assert lp.bound is None and lp.status == "cancelled"


def test_infeasible_relaxation_has_no_bound():
    from tests.optimizer.test_explain import job, make

    # two mandatory 8-GPU jobs in periods 0-1 of a 12-GPU pool: even the LP cannot fit them
    model = build(make(lambda d: d["jobs"].extend([job("a"), job("b")])))
    lp = lp_relaxation(model, 10)
    assert lp.status == "infeasible" and lp.bound is None and lp.values is None


def test_each_job_adds_its_most_profitable_columns_first():
    import numpy as np

    from gpualloc.optimizer.strategies.lp import _most_profitable

    reduced = np.array([5.0, 4.0, 3.0, 9.0, 1.0, 2.0, 8.0])
    job_of = np.array([0, 0, 0, 1, 1, 2, 2])
    every = np.arange(7)
    assert _most_profitable(every, reduced, job_of, 10, 2).tolist() == [3, 6, 0, 1, 5, 4]
    assert _most_profitable(every, reduced, job_of, 2, 1).tolist() == [3, 6]  # the batch cap
    assert _most_profitable(np.array([2, 1]), reduced, job_of, 10, 1).tolist() == [1]


def test_wide_windows_reach_the_full_lp_optimum():
    """Many starts per job: the per-job pricing and primal simplex still end at the LP."""
    model = build(generate(3, 4, 40, 12, seed=5, windows="wide"))
    expected, _ = full_lp(model)
    lp = lp_relaxation(model, 60)
    assert lp.status == "optimal"
    assert close(lp.objective, expected, 1e-6) and close(lp.bound, expected, 1e-5)


def test_highs_runs_with_a_short_gil_switch_interval():
    import sys

    import highspy

    from gpualloc.optimizer.backends.mip import HIGHS_SWITCH_INTERVAL, highs_threads

    before = sys.getswitchinterval()
    assert before > HIGHS_SWITCH_INTERVAL  # the interpreter's default, 5 ms
    with highs_threads(highspy.Highs(), 1):
        assert sys.getswitchinterval() <= HIGHS_SWITCH_INTERVAL
        with highs_threads(highspy.Highs(), 1):
            pass
        assert sys.getswitchinterval() <= HIGHS_SWITCH_INTERVAL  # one still runs
    assert sys.getswitchinterval() == before
