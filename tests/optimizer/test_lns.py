"""The large-model strategy: LP bound + CP-SAT large-neighbourhood search."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings

from gpualloc.models.validator import validate
from gpualloc.optimizer import solve
from gpualloc.optimizer.backends import SolveParams, available_backends
from gpualloc.optimizer.backends.greedy import greedy_values
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.solve import choose_strategy
from gpualloc.optimizer.stop import Stop
from gpualloc.optimizer.strategies.lns import LNS_THRESHOLD, lns_solve
from gpualloc.optimizer.strategies.lp import lp_relaxation
from tests.strategies import instances

pytest.importorskip("highspy")
pytest.importorskip("ortools")


@pytest.fixture(scope="module")
def model(instance):
    return build(instance)


def test_lp_bound_is_proven(model, exact):
    lp = lp_relaxation(model, 10)
    assert lp.status == "optimal"
    assert lp.bound >= exact - 1e-6


def test_lns_plan_is_valid_and_bounded(instance, model, exact):
    greedy = model.objective_value(greedy_values(model))
    plan = solve(instance, "cpsat", time_limit=5, strategy="lns", seed=1)
    assert validate(instance, plan) == []
    assert plan.objective >= greedy - 1e-9
    assert plan.objective <= exact + 1e-6
    assert plan.bound >= exact - 1e-6
    assert plan.summary["strategy"] == "lns"


def test_lns_deterministic_for_seed(model):
    params = SolveParams(time_limit=None, seed=7, workers=1, lns_rounds=4)
    start = greedy_values(model)
    a = lns_solve(model, params, Stop(None), list(start))
    b = lns_solve(model, params, Stop(None), list(start))
    assert a.values == b.values
    assert a.bound == b.bound
    assert model.check(a.values) == []


def test_lns_honours_time_limit(instance):
    began = time.perf_counter()
    plan = solve(instance, "cpsat", time_limit=3.0, strategy="lns")
    assert time.perf_counter() - began <= 3.0 * 1.1 + 2.0
    assert plan.objective is not None and plan.bound >= plan.objective


def test_progress_reported(model):
    seen = []
    lns_solve(model, SolveParams(time_limit=2.0), Stop(2.0), greedy_values(model), seen.append)
    assert seen and all(p.bound >= p.objective for p in seen)


def test_strategy_choice(model):
    assert choose_strategy("cpsat", model, "auto") == "exact"  # small model
    assert choose_strategy("cbc", model, "lns") == "lns"
    assert choose_strategy("cpsat", model, "exact") == "exact"
    assert model.num_vars < LNS_THRESHOLD
    with pytest.raises(ValueError):
        choose_strategy("cpsat", model, "nope")
    assert "lns" not in available_backends()  # a strategy of cpsat, not a backend


def test_searches_beside_the_lns_exchange_plans_and_stay_valid(instance, model, exact):
    result = lns_solve(model, SolveParams(time_limit=5, workers=3), Stop(5),
                       greedy_values(model))
    assert result.values is not None and model.check(result.values) == []
    assert {"mip_status", "mip_offers", "interval_plans"} <= set(result.stats)
    assert result.bound >= exact - 1e-6
    plan = solve(instance, "cpsat", time_limit=5, strategy="lns", workers=2)
    assert validate(instance, plan) == []
    assert plan.objective <= exact + 1e-6 <= plan.bound + 2e-6


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_lns_with_its_helpers_is_valid_on_random_instances(inst):
    plan = solve(inst, "cpsat", time_limit=1.5, strategy="lns", workers=3)
    if plan.objective is not None:
        assert validate(inst, plan) == []
        assert plan.bound is None or plan.bound >= plan.objective - 1e-6


def test_exact_search_beside_hands_over_only_valid_better_plans(model, exact):
    from gpualloc.optimizer.strategies.beside import MipHelper

    start = greedy_values(model)
    helper = MipHelper(model, start, 0, Stop(20))
    helper.offer(start)
    helper.thread.join(20)  # the small model is proven within seconds
    stats = helper.finish()
    assert stats["mip_status"] == "optimal", stats
    assert abs(helper.bound(float("nan")) - exact) <= 1e-6 * exact
    taken = helper.take(model.objective_value(start))
    assert taken is not None and model.check(taken) == []
    assert abs(model.objective_value(taken) - exact) <= 1e-6 * exact
    assert helper.take(model.objective_value(taken)) is None  # each plan once


def test_lagrangian_is_skipped_when_its_share_is_shorter_than_its_set_up(instance):
    model = build(instance)
    model.matrix().seconds = 1e6  # as if the matrix had taken that long: no time for it
    raw = lns_solve(model, SolveParams(time_limit=3, workers=1), Stop(3))
    assert raw.values is not None and not model.check(raw.values)
    assert any(s.startswith("lagrangian: ") and "set-up" in s for s in raw.stats["lns_skipped"])
    assert "lagrangian_bound" not in raw.stats


def test_top_per_job_keeps_each_jobs_best() -> None:
    import numpy as np

    from gpualloc.optimizer.model.matrix import top_per_job

    score = np.array([1.0, 3.0, 2.0, 5.0, 5.0, 0.0])
    job_of = np.array([0, 0, 0, 1, 1, 2])
    assert top_per_job(np.arange(6), score, job_of, 2).tolist() == [1, 2, 3, 4, 5]
    assert top_per_job(np.arange(6), score, job_of, 1).tolist() == [1, 3, 5]  # tie: lower index
    assert top_per_job(np.array([0, 5]), score, job_of, 1).tolist() == [0, 5]
    assert top_per_job(np.zeros(0, np.int64), score, job_of, 3).tolist() == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(jobs=12, periods=8))
def test_priced_neighbourhoods_free_only_priced_or_incumbent_placements(inst) -> None:
    """Before the LP, a restricted neighbourhood frees the priced columns and the incumbent's."""
    import random

    import numpy as np

    from gpualloc.optimizer.model.matrix import top_per_job
    from gpualloc.optimizer.strategies.lagrange import lagrangian_bound
    from gpualloc.optimizer.strategies.neighbourhood import Search

    model = build(inst)
    if not model.num_vars or model.infeasible:
        return
    values = greedy_values(model)
    lag = lagrangian_bound(model, None, max_iterations=30)
    if lag.reduced is None:
        return
    priced = top_per_job(np.arange(model.num_vars), np.asarray(lag.reduced),
                         model.matrix().job_of, 1).tolist()
    search = Search(model, values, None, random.Random(0), priced)
    allowed = set(priced) | {i for i, v in enumerate(values) if v > 0.5}
    assert search.support is not None and {i for i, s in enumerate(search.support) if s} \
        == set(priced)
    frees = [search.neighbourhood(model.num_vars) for _ in range(12)]
    restricted = [f for f in frees if set(f) <= allowed]
    assert restricted, "no neighbourhood kept to the priced placements"
    for free in frees:
        sub = search.sub_model(free)
        assert sub.num_vars == len(free)


def _support_mip(model, start, seconds: float = 20.0):
    """A SupportMip on ``model``'s LP support (and ``start``'s placements), run to its end."""
    import random

    import numpy as np

    from gpualloc.optimizer.strategies.beside import SupportMip
    from gpualloc.optimizer.strategies.neighbourhood import SUPPORT_EPS, Search

    lp = lp_relaxation(model, 10)
    search = Search(model, list(start), None, random.Random(0))
    free = np.flatnonzero((np.asarray(lp.values) > SUPPORT_EPS)
                          | (np.asarray(start) > 0.5)).tolist()
    helper = SupportMip(search, free, 0, Stop(seconds))
    helper.thread.join(seconds)
    return helper, free


def test_support_mip_hands_over_valid_better_plans_within_the_support(model):
    start = greedy_values(model)
    helper, free = _support_mip(model, start)
    stats = helper.finish()
    assert stats["support_mip_status"] == "optimal", stats
    assert stats["support_mip_size"] == len(free) < model.num_vars
    taken = helper.take(model.objective_value(start))
    assert taken is not None and model.check(taken) == []
    assert model.objective_value(taken) > model.objective_value(start)
    allowed = set(free)
    assert all(i in allowed for i, v in enumerate(taken) if v > 0.5)
    assert helper.take(model.objective_value(taken)) is None  # each plan once


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_support_mip_plans_are_valid_on_random_instances(inst):
    model = build(inst)
    start = greedy_values(model)
    if model.check(start):
        return  # no valid start to restrict around
    helper, _ = _support_mip(model, start, seconds=5.0)
    helper.finish()
    taken = helper.take(float("-inf"))
    assert taken is not None and model.check(taken) == []
    assert model.objective_value(taken) >= model.objective_value(start) - 1e-9


def test_lns_runs_highs_on_the_lp_support_beside_it(model, exact):
    # one worker: no HiGHS on the whole model, so the LP's support gets the MIP
    result = lns_solve(model, SolveParams(time_limit=7, workers=1), Stop(7),
                       greedy_values(model))
    assert result.values is not None and model.check(result.values) == []
    assert "support_mip_status" in result.stats and "mip_status" not in result.stats
    assert model.objective_value(result.values) <= exact + 1e-6 <= result.bound + 2e-6


def test_an_lp_stopped_at_the_end_still_gives_its_stats_and_bound(instance, monkeypatch):
    """An LP still running when the search ends (HiGHS between its checks) is stopped and
    joined; its result, a proven bound so far, is taken rather than dropped."""
    from gpualloc.optimizer.strategies import lp as lp_module

    model = build(instance)
    fake_bound = model.trivial_bound()

    def solve_until_asked(self, model, time_limit=None, start=None, stop=None):
        stop._event.wait(30.0)  # returns only on the request at the search's end
        return lp_module.LpBound(fake_bound, None, 0.0, "stopped", iterations=1)

    monkeypatch.setattr(lp_module.LpRun, "solve", solve_until_asked)
    raw = lns_solve(model, SolveParams(time_limit=3, workers=1), Stop(3))
    assert raw.values is not None and not model.check(raw.values)
    assert raw.stats["lp_status"] == "stopped"
    assert raw.stats["lp_bound"] == fake_bound
    assert not any(s.startswith("lp: ") for s in raw.stats.get("lns_skipped", []))


def test_the_support_mip_leaves_time_for_highs_on_the_whole_model(model, monkeypatch):
    """With HiGHS on the whole model to follow (2 workers, a small model), the support's MIP
    gets at most ``SUPPORT_WHOLE_SHARE`` of the time left at the LP's end, and the whole
    model's MIP runs after it."""
    from gpualloc.optimizer.strategies import lns

    given: list[tuple[float, float]] = []
    real = lns.SupportMip

    def recording(search, free, seed, stop):
        given.append((stop.remaining(), stop._parent.remaining()))
        return real(search, free, seed, stop)

    monkeypatch.setattr(lns, "SupportMip", recording)
    raw = lns_solve(model, SolveParams(time_limit=8, workers=2), Stop(8), greedy_values(model))
    assert raw.values is not None and model.check(raw.values) == []
    assert len(given) == 1
    mine, left = given[0]
    assert 0 < mine <= lns.SUPPORT_WHOLE_SHARE * left + 1e-3
    assert "mip_status" in raw.stats and "support_mip_status" in raw.stats
