"""The one Stop reaches every phase: build, matrix, PuLP translation, greedy, Lagrangian, LP,
LNS, portfolio, each backend and the pipeline. Stops are requested (an event) or expire on a
fake clock; nothing sleeps and nothing is timed. Every plan returned goes through the validator.
"""

from __future__ import annotations

import pytest

from gpualloc.models import Instance, SolveStatus
from gpualloc.models.validator import validate
from gpualloc.optimizer import build, solve
from gpualloc.optimizer.backends import SolveParams, get_backend
from gpualloc.optimizer.backends.greedy import greedy_values
from gpualloc.optimizer.model.matrix import Matrix
from gpualloc.optimizer.model.pulp import to_pulp
from gpualloc.optimizer.stop import Stop, StopRequested
from gpualloc.optimizer.strategies.lagrange import lagrangian_bound
from gpualloc.optimizer.strategies.lns import lns_solve
from gpualloc.optimizer.strategies.lp import lp_relaxation
from gpualloc.optimizer.strategies.portfolio import portfolio_available, portfolio_solve
from gpualloc.sources.generate import generate
from tests.conftest import ALL_BACKENDS


def requested() -> Stop:
    stop = Stop(None)
    stop.request()
    return stop


class Ticks:
    """A fake clock that advances one second per reading: a stop of ``k`` seconds expires
    after about ``k`` checks, deterministically."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def wide() -> Instance:
    """A small instance with wide windows (many starts per option)."""
    return generate(3, 4, 40, 12, seed=5, windows="wide")


def test_build_raises_stop_requested_and_says_how_far_it_got(wide: Instance) -> None:
    with pytest.raises(StopRequested) as caught:
        build(wide, stop=requested())
    assert caught.value.phase == "building the model"
    assert caught.value.why == "interrupted"
    assert "placements" in caught.value.detail


def test_build_expires_on_a_fake_clock(wide: Instance) -> None:
    with pytest.raises(StopRequested) as caught:
        build(wide, stop=Stop(3.0, clock=Ticks()))
    assert caught.value.why == "time limit"
    assert build(wide, stop=Stop(None)).num_vars > 0  # no deadline: it finishes


def test_matrix_and_pulp_translation_stop(wide: Instance) -> None:
    model = build(wide)
    with pytest.raises(StopRequested):
        Matrix(model, requested())
    with pytest.raises(StopRequested):
        to_pulp(model, stop=requested())


def test_solve_stopped_while_building_returns_no_plan_in_one_line(wide: Instance) -> None:
    plan = solve(wide, "cpsat", stop=requested())
    assert plan.status == SolveStatus.UNKNOWN and not plan.assignments
    line = plan.summary["no_plan"]
    assert line.startswith("no plan: interrupted while building the model (")
    assert "\n" not in line
    expired = solve(wide, "cpsat", stop=Stop(3.0, clock=Ticks()))
    assert expired.summary["no_plan"].startswith(
        "no plan: the time limit ended while building the model (")


def test_solve_stopped_while_building_keeps_a_valid_warm_start(wide: Instance) -> None:
    first = solve(wide, "greedy", time_limit=None)
    assert validate(wide, first) == []
    plan = solve(wide, "cpsat", stop=requested(), warm_start=first)
    assert plan.status == SolveStatus.FEASIBLE
    assert validate(wide, plan) == []
    assert plan.objective == pytest.approx(first.objective)
    assert "model" in plan.summary["skipped"]


def test_greedy_stopped_returns_a_partial_plan_within_every_row(wide: Instance) -> None:
    model = build(wide)
    full = greedy_values(model)
    assert model.check(full) == [] and sum(full) > 0
    none = greedy_values(model, stop=requested())
    assert sum(none) == 0  # stopped before its first placement
    less_than_le_rows = [r.name for r in model.rows if r.sense == "<="]
    assert not set(model.check(none)) & set(less_than_le_rows)


def test_lagrangian_and_lp_stop_with_a_valid_bound(wide: Instance) -> None:
    model = build(wide)
    exact = solve(wide, "cpsat", time_limit=30, strategy="exact")
    assert exact.status == SolveStatus.OPTIMAL and exact.objective is not None
    lag = lagrangian_bound(model, None, stop=requested())  # stopped in its set-up: no bound
    assert lag.iterations == 0 and lag.bound is None
    lag = lagrangian_bound(model, 0.0)  # out of time after the set-up: one evaluation
    assert lag.iterations == 1 and lag.bound is not None
    assert lag.bound >= exact.objective - 1e-6 * abs(exact.objective)
    pytest.importorskip("highspy")
    lp = lp_relaxation(model, stop=requested())
    assert lp.status == "cancelled" and lp.bound is None


def test_lns_stopped_returns_its_start_and_says_the_search_was_skipped(wide: Instance) -> None:
    pytest.importorskip("highspy")
    model = build(wide)
    start = greedy_values(model)
    raw = lns_solve(model, SolveParams(time_limit=None), requested(), start)
    assert raw.status == "feasible" and raw.values == start
    assert any(s.startswith("search:") for s in raw.stats["lns_skipped"])
    assert raw.bound is not None and raw.bound >= model.objective_value(start) - 1e-9


@pytest.mark.skipif(not portfolio_available(), reason="needs CP-SAT and HiGHS")
def test_portfolio_stopped_keeps_the_start(wide: Instance) -> None:
    model = build(wide)
    start = greedy_values(model)
    raw = portfolio_solve(model, SolveParams(time_limit=60, workers=2), requested(), start)
    assert raw.stats["stopped"] is True
    assert {raw.stats["cpsat_status"], raw.stats["highs_status"]} == {"unknown"}


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_each_backend_stopped_before_its_search(wide: Instance, name: str) -> None:
    model = build(wide)
    engine = get_backend(name)
    raw = engine.solve(model, SolveParams(time_limit=60), greedy_values(model), stop=requested())
    if engine.capabilities.stops_on_request and name != "greedy":
        assert raw.status == "unknown" and raw.values is None
        assert "interrupted" in str(raw.stats)
    else:  # the greedy stops with nothing placed: no feasible plan when jobs are mandatory
        assert raw.values is None or model.check(raw.values) == []


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_pipeline_stopped_after_the_build_skips_the_greedy_and_the_search(wide: Instance,
                                                                          name: str) -> None:
    stop = Stop(None)
    plan = solve(wide, name, stop=stop, customize=lambda model: stop.request())
    assert plan.status == SolveStatus.UNKNOWN and not plan.assignments
    skipped = plan.summary["skipped"]
    assert skipped["search"] == "interrupted before the search"
    if name != "greedy":
        assert skipped["greedy start"] == "interrupted before it began"
    assert plan.summary["no_plan"].startswith("no plan: interrupted before a first plan was "
                                              "found (model of ")


def test_pipeline_keeps_a_warm_start_when_stopped_before_the_search(wide: Instance) -> None:
    first = solve(wide, "greedy", time_limit=None)
    stop = Stop(None)
    plan = solve(wide, "cpsat", stop=stop, warm_start=first,
                 customize=lambda model: stop.request())
    assert plan.status == SolveStatus.FEASIBLE and validate(wide, plan) == []
    assert plan.objective == pytest.approx(first.objective)
    assert plan.bound is not None and plan.bound >= plan.objective


@pytest.mark.parametrize("stop_first", [False, True])
def test_ready_receives_the_returned_plan_before_solve_returns(stop_first):
    inst = generate(3, 3, 20, 8, seed=5)
    got: list = []
    stop = requested() if stop_first else Stop(None)
    plan = solve(inst, "greedy", stop=stop, ready=got.append)
    assert got == [plan] and got[0] is plan
    if plan.objective is not None:
        assert validate(inst, plan) == []
