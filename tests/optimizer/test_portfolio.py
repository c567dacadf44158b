"""The portfolio strategy: CP-SAT and HiGHS side by side, best plan and tightest bound."""

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
from gpualloc.optimizer.strategies.portfolio import PORTFOLIO_MIN_VARS, portfolio_solve
from tests.conftest import check_plan, close

pytest.importorskip("highspy")
pytest.importorskip("ortools")

ROOT = Path(__file__).resolve().parents[2]


def test_portfolio_proves_the_same_optimum(instance, exact):
    plan = solve(instance, "cpsat", time_limit=30, workers=2, strategy="portfolio")
    check_plan(instance, plan)
    assert plan.status.value == "optimal"
    assert close(plan.objective, exact)
    assert plan.backend == "cpsat+highs"
    summary = plan.summary
    assert summary["strategy"] == "portfolio"
    assert summary["winner"] in ("cpsat", "highs")
    assert {"cpsat_status", "highs_status"} <= set(summary)


def test_tightest_bound_and_best_plan_are_kept(instance):
    model = build(instance)
    result = portfolio_solve(model, SolveParams(time_limit=0.5, workers=2), Stop(0.5),
                             greedy_values(model))
    bounds = [b for b in (result.stats["cpsat_bound"], result.stats["highs_bound"])
              if b is not None]
    assert result.bound == (min(bounds) if bounds else None)
    found = [o for o in (result.stats["cpsat_objective"], result.stats["highs_objective"])
             if o is not None]
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
