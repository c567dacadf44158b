"""Huge models by partition: groups, parts, shares, the joined plan and the strategy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gpualloc.models.validator import validate
from gpualloc.optimizer import solve, strategies
from gpualloc.optimizer.backends import SolveParams
from gpualloc.optimizer.backends.greedy import greedy_values
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.stop import Stop
from gpualloc.optimizer.strategies import choose_engine, choose_strategy, lns
from gpualloc.optimizer.strategies import partition as part
from gpualloc.optimizer.strategies.neighbourhood import restricted
from tests.strategies import instances, random_instance

pytest.importorskip("highspy")
pytest.importorskip("ortools")


@pytest.fixture(scope="module")
def model(instance):
    return build(instance)


def _joined_greedy(model, parts, plan=None):
    """Each part's plan on its rhs, joined into one vector: its greedy plan when that satisfies
    the part's sub-model, else ``plan``'s placements there, which always must (a part's LNS
    starts from them; greedy cannot meet a row whose part rhs is negative)."""
    limits = part.shares(model, parts, plan)
    values = np.zeros(model.num_vars)
    zeros = np.zeros(model.matrix().m)
    for k, cols in enumerate(parts):
        sub = restricted(model, values, zeros, cols, limits[:, k])
        found = greedy_values(sub)
        if plan is not None:
            kept = [plan[i] for i in cols]
            assert sub.check(kept) == []
            if sub.check(found):
                found = kept
        values[cols] = found
    return values.tolist()


def test_groups_keep_every_unshared_row_whole(model):
    groups = part.job_groups(model)
    group_of = np.full(model.num_vars, -1)
    for g, cols in enumerate(groups):
        assert (group_of[cols] == -1).all()
        group_of[cols] = g
    assert (group_of >= 0).all()
    for row in model.rows:
        if row.kind not in part.SHARED_KINDS:
            assert len(set(group_of[row.vars].tolist())) <= 1, row.name


def test_split_covers_every_column_once_and_balances(model):
    groups = part.job_groups(model)
    parts = part.split(groups, 3)
    cols = sorted(c for p in parts for c in p)
    assert cols == list(range(model.num_vars))
    loads = sorted(len(p) for p in parts)
    assert loads[-1] - loads[0] <= len(groups[0])


@pytest.mark.parametrize("with_plan", [False, True])
def test_parts_rhs_of_a_shared_row_sum_to_its_rhs_and_keep_the_plan(model, with_plan):
    parts = part.split(part.job_groups(model), 3)
    plan = greedy_values(model) if with_plan else None
    limits = part.shares(model, parts, plan)
    mat = model.matrix()
    shared = np.array([r.kind in part.SHARED_KINDS and r.sense == "<=" for r in model.rows])
    for r, row in enumerate(model.rows):
        if row.kind in part.SHARED_KINDS and row.sense == "<=":
            assert limits[r].sum() <= row.rhs + 1e-6 * max(1.0, abs(row.rhs))
        else:
            assert (limits[r] == row.rhs).all()
    if plan is not None:  # each part may keep the plan's placements
        x = np.asarray(plan)
        for k, cols in enumerate(parts):
            only = np.zeros(model.num_vars)
            only[cols] = x[cols]
            assert (mat.activity(only)[shared] <= limits[shared, k] + 1e-6).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(2, 4), st.booleans())
@example(random_instance(2280451), 3, True)  # a share cap: a part's rhs below 0
def test_joined_part_plans_satisfy_the_whole_model(inst, parts_count, with_plan):
    model = build(inst)
    if model.infeasible or not model.num_vars:
        return
    parts = part.split(part.job_groups(model), parts_count)
    plan = greedy_values(model)
    joined = _joined_greedy(model, parts, plan if with_plan and not model.check(plan) else None)
    kinds = {r.name: (r.kind, r.sense) for r in model.rows}
    # every shared row holds; only a mandatory job the greedy could not fit in its part's
    # share may be left out (then the partition falls back to the whole model)
    assert all(kinds[name] == ("assign", "==") for name in model.check(joined))


def _force_parts(monkeypatch, per_part: int) -> None:
    monkeypatch.setattr(part, "PART_VARS", per_part)
    monkeypatch.setattr(part, "MIN_PART_SECONDS", 0.5)


def test_partition_plan_is_valid_and_bounded(instance, model, exact, monkeypatch):
    _force_parts(monkeypatch, model.num_vars // 3)
    plan = solve(instance, "cpsat", time_limit=8, strategy="partition", seed=2, workers=2)
    assert validate(instance, plan) == []
    assert plan.objective <= exact + 1e-6 <= plan.bound + 2e-6
    assert plan.summary["strategy"] == "partition"
    assert plan.summary["partition_parts"] >= 2
    assert len(plan.summary["partition_objectives"]) == plan.summary["partition_parts"]


def test_partition_falls_back_when_a_part_has_no_plan(instance, model, monkeypatch):
    _force_parts(monkeypatch, model.num_vars // 3)
    calls = []
    real = part.lns_solve

    def failing_first(sub, params, stop=None, start=None, progress=None, **kwargs):
        calls.append(sub.num_vars)
        if len(calls) == 1:
            from gpualloc.optimizer.backends.base import BackendResult

            return BackendResult("infeasible", None, None, {})
        return real(sub, params, stop, start, progress, **kwargs)

    monkeypatch.setattr(part, "lns_solve", failing_first)
    result = part.partition_solve(model, SolveParams(time_limit=8, workers=1), Stop(8))
    assert "no plan" in result.stats["partition_skipped"]
    assert result.values is not None and model.check(result.values) == []
    assert result.stats["partition_objectives"] == []  # the parts stopped at the first
    greedy = model.objective_value(greedy_values(model))
    assert model.objective_value(result.values) >= greedy - 1e-9  # the base plan kept


def test_partition_stopped_before_it_begins_keeps_a_valid_plan(model, monkeypatch):
    _force_parts(monkeypatch, model.num_vars // 3)
    stop = Stop(30)
    stop.request()
    result = part.partition_solve(model, SolveParams(time_limit=30, workers=1), stop)
    assert result.values is None or model.check(result.values) == []
    assert result.stats.get("partition_skipped", "").startswith("part 1")


def test_partition_interrupted_in_a_part_returns_the_joined_plan_at_once(model, monkeypatch):
    _force_parts(monkeypatch, model.num_vars // 3)
    stop = Stop(30)
    real, calls = part.lns_solve, []

    def interrupting(sub, params, part_stop=None, start=None, progress=None, **kwargs):
        calls.append(sub.num_vars)
        result = real(sub, SolveParams(time_limit=1, workers=1), Stop(1), start)
        stop.request()  # SIGINT during the first part
        return result

    monkeypatch.setattr(part, "lns_solve", interrupting)
    result = part.partition_solve(model, SolveParams(time_limit=30, workers=1), stop)
    assert len(calls) == 1  # no other part, and no search of the whole model
    assert result.stats["stopped"] is True
    assert result.stats["partition_skipped"].startswith("part 2")
    assert model.check(result.values) == []
    assert result.bound is not None
    assert model.objective_value(result.values) <= result.bound + 1e-6


def test_partition_without_time_limit_or_with_rounds_is_the_lns(model):
    result = part.partition_solve(model, SolveParams(time_limit=None, lns_rounds=2),
                                  Stop(None))
    assert result.stats["strategy"] == "lns"
    assert model.check(result.values) == []


def test_auto_picks_partition_only_for_many_jobs(model, monkeypatch):
    monkeypatch.setattr(lns, "LNS_THRESHOLD", 10)
    monkeypatch.setattr(strategies, "EXACT_MAX_VARS", 10)
    assert choose_engine(model)[1] == "lns"
    assert choose_strategy("cpsat", model) == "lns"
    monkeypatch.setattr(part, "PARTITION_MIN_JOBS", len(model.by_job))
    assert choose_engine(model) == ("cpsat", "partition", 1)
    assert choose_strategy("cpsat", model) == "partition"
