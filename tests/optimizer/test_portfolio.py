"""The portfolio strategy: time-indexed CP-SAT, HiGHS and the interval model side by side, best
plan and tightest bound, incumbents exchanged."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gpualloc.optimizer import solve
from gpualloc.optimizer.backends import SolveParams
from gpualloc.optimizer.backends.greedy import greedy_values
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.solve import choose_strategy
from gpualloc.optimizer.stop import Stop
from gpualloc.optimizer.strategies import (
    EXACT_MAX_VARS,
    NARROW_LNS_FROM,
    NARROW_PER_JOB,
    choose_engine,
)
from gpualloc.optimizer.strategies.lns import LNS_THRESHOLD
from gpualloc.optimizer.strategies.portfolio import (
    MEMBERS,
    PORTFOLIO_MIN_VARS,
    Exchange,
    members_for,
    portfolio_solve,
)
from gpualloc.sources.generate import generate
from tests.conftest import check_plan, close, plan_of

pytest.importorskip("highspy")
pytest.importorskip("ortools")

ROOT = Path(__file__).resolve().parents[2]


def test_portfolio_proves_the_same_optimum(instance, exact):
    plan = solve(instance, "cpsat", time_limit=30, workers=2, strategy="portfolio")
    check_plan(instance, plan)
    assert plan.status.value == "optimal"
    assert close(plan.objective, exact)
    assert plan.backend == "portfolio"
    summary = plan.summary
    assert summary["strategy"] == "portfolio"
    assert summary["winner"] in ("cpsat", "highs")
    assert {"cpsat_status", "highs_status"} <= set(summary)


def test_three_searches_exchange_plans_and_agree(instance, exact):
    model = build(instance)
    result = portfolio_solve(model, SolveParams(time_limit=30, workers=3), Stop(30),
                             greedy_values(model), members=MEMBERS)
    assert result.status == "optimal"
    assert {"cpsat_status", "highs_status", "interval_status"} <= set(result.stats)
    assert result.stats["exchanged_plans"] >= 1
    plan = plan_of(instance, model, result.values, "portfolio")
    check_plan(instance, plan)
    assert close(plan.objective, exact)
    assert members_for(2) == ("cpsat", "highs") and "interval" in members_for(3)



def test_tightest_bound_and_best_plan_are_kept(instance):
    model = build(instance)
    result = portfolio_solve(model, SolveParams(time_limit=0.5, workers=2), Stop(0.5),
                             greedy_values(model))
    bounds = [b for b in (result.stats["cpsat_bound"], result.stats["highs_bound"],
                          result.stats.get("lagrangian_bound")) if b is not None]
    assert result.bound == (min(bounds) if bounds else None)
    found = [result.stats.get(f"{m}_objective") for m in ("cpsat", "highs", "interval")]
    found = [o for o in found if o is not None]
    assert result.values is not None
    assert close(model.objective_value(result.values), max(found))
    assert model.check(result.values) == []


def test_stop_ends_both_searches(instance):
    model = build(instance)
    stop = Stop(60)
    threading.Timer(0.5, stop.request).start()
    began = time.perf_counter()
    result = portfolio_solve(model, SolveParams(time_limit=60, workers=2), stop,
                             greedy_values(model))
    assert time.perf_counter() - began < 10
    assert result.values is not None and model.check(result.values) == []


def test_auto_picks_the_portfolio_with_two_workers_only(instance):
    from gpualloc.models import load_instance

    model = build(load_instance(ROOT / "instances" / "portfolio.yaml"))
    assert model.num_vars >= PORTFOLIO_MIN_VARS
    assert choose_strategy("cpsat", model, "auto", workers=2) == "portfolio"
    assert choose_strategy("cpsat", model, "auto", workers=1) == "exact"  # deterministic
    assert choose_strategy("highs", model, "auto", workers=2) == "exact"
    small = build(instance)
    assert small.num_vars < PORTFOLIO_MIN_VARS
    assert choose_strategy("cpsat", small, "auto", workers=2) == "exact"


def test_auto_engine_by_workers_and_size(instance):
    from gpualloc.models import load_instance

    small = build(load_instance(ROOT / "instances" / "portfolio.yaml"))
    assert small.num_vars < EXACT_MAX_VARS
    for workers in (1, 2):
        assert choose_engine(small, "auto", workers) == ("cpsat", "exact", workers)
    assert choose_engine(small, "lns", workers=1) == ("cpsat", "lns", 1)
    wide = build(generate(3, 3, 120, 26, seed=1, windows="wide"))
    narrow = build(generate(6, 6, 500, 26, seed=1))
    for m in (wide, narrow):
        assert m.num_vars >= EXACT_MAX_VARS, m.num_vars
    assert wide.num_vars > NARROW_PER_JOB * len(wide.by_job)
    assert narrow.num_vars <= NARROW_PER_JOB * len(narrow.by_job)
    for workers in (1, 2):  # wide windows: CP-SAT on one thread
        assert choose_engine(wide, "auto", workers) == ("cpsat", "exact", 1)
    assert choose_engine(narrow, "auto", 1) == ("highs", "exact", 1)  # deterministic
    assert choose_engine(narrow, "exact", 2) == ("highs", "exact", 2)
    assert choose_engine(narrow, "auto", 2) == ("highs", "exact", 2)
    assert narrow.num_vars < NARROW_LNS_FROM


def test_auto_engine_runs_the_lns_on_big_narrow_models_with_two_workers():
    big = build(generate(10, 20, 1300, 26, seed=2))
    assert NARROW_LNS_FROM <= big.num_vars <= NARROW_PER_JOB * len(big.by_job), big.num_vars
    assert big.num_vars < LNS_THRESHOLD
    assert choose_engine(big, "auto", 2) == ("cpsat", "lns", 2)
    assert choose_engine(big, "auto", 1) == ("highs", "exact", 1)  # deterministic
    assert choose_engine(big, "exact", 2) == ("highs", "exact", 2)


def test_default_solve_uses_every_core(instance, exact):
    plan = solve(instance, time_limit=30)
    check_plan(instance, plan)
    assert plan.parameters["workers"] == optimizer_cores()
    assert close(plan.objective, exact)


def optimizer_cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def test_exchange_hands_a_plan_to_the_other_searches_once():
    model = build_tiny()
    ex = Exchange(model)
    highs, interval = ex.feed("highs"), ex.feed("interval")
    assert ex.offer([1.0, 0.0], 2.0, "interval")
    assert not ex.offer([0.0, 1.0], 1.0, "highs")  # not better: not kept
    assert highs() == [1.0, 0.0] and highs() is None  # once per improvement
    assert interval() is None  # its own plan is not handed back to it


def build_tiny():
    from gpualloc.optimizer.model.formulation import LinearModel

    return LinearModel()


def test_highs_takes_plans_fed_to_it(instance, exact):
    from gpualloc.optimizer.backends.mip import HighsBackend

    model = build(instance)
    best = solve(instance, "cpsat", time_limit=30, strategy="exact", workers=1)
    fed = model.encode(list(best.assignments))
    calls: list[int] = []

    def feed():
        calls.append(1)
        return fed if len(calls) == 1 else None

    result = HighsBackend().solve(model, SolveParams(time_limit=30), None, stop=Stop(30),
                                  feed=feed)
    assert result.status == "optimal" and result.values is not None
    assert model.check(result.values) == []
    assert close(model.objective_value(result.values), exact)
