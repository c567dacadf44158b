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
from gpualloc.optimizer.strategies.partition import part_model
from tests.strategies import instances, random_instance

pytest.importorskip("highspy")
pytest.importorskip("ortools")


@pytest.fixture(scope="module")
def model(instance):
    return build(instance)


def _joined_greedy(model, parts, plan):
    """The parts one after another, as the partition does: each part's greedy plan on what the
    others leave (``part_model``) when it satisfies the part and is better, else the joined
    plan's placements there, which always must (but for a mandatory job when ``plan`` is
    empty)."""
    values = np.asarray(plan, dtype=np.float64)
    for cols in parts:
        sub, kept = part_model(model, values, cols)
        assert set(kept) <= set(cols)
        current = values[kept].tolist()
        missed = sub.check(current)  # the joined plan's placements fit the part
        assert all(name.startswith("assign[") for name in missed)
        assert values[sorted(set(cols) - set(kept))].sum() == 0  # none of them dropped
        found = greedy_values(sub)
        if not sub.check(found) and (
                missed or sub.objective_value(found) > sub.objective_value(current)):
            values[kept] = found
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


def test_part_model_leaves_a_part_what_the_others_do_not_use(model):
    parts = part.split(part.job_groups(model), 3)
    plan = np.asarray(greedy_values(model))
    assert model.check(plan.tolist()) == []
    cols = parts[1]
    sub, kept = part_model(model, plan, cols)
    others = plan.copy()
    others[cols] = 0
    used = model.matrix().activity(others)
    index = {r.name: k for k, r in enumerate(model.rows)}
    for row in sub.rows:  # each row of the part: its rhs less what the other parts use
        k = index[row.name]
        assert row.rhs == pytest.approx(model.rows[k].rhs - used[k], abs=1e-6)
    # a dropped placement cannot fit what the others leave on some row of its own
    mat = model.matrix()
    for v in sorted(set(cols) - set(kept)):
        rows, coefs = mat.column(v)
        assert any(c > model.rows[r].rhs - used[r] + 1e-9
                   for r, c in zip(rows, coefs, strict=True)
                   if model.rows[r].sense == "<="), model.placements[v]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(2, 4), st.booleans())
@example(random_instance(2280451), 3, True)  # a share cap: rows with negative entries
def test_joined_part_plans_satisfy_the_whole_model(inst, parts_count, with_plan):
    model = build(inst)
    if model.infeasible or not model.num_vars:
        return
    parts = part.split(part.job_groups(model), parts_count)
    plan = greedy_values(model)
    if not with_plan or model.check(plan):
        plan = [0.0] * model.num_vars  # no base plan: the parts start from nothing
    joined = _joined_greedy(model, parts, plan)
    assert model.objective_value(joined) >= model.objective_value(plan) - 1e-9
    kinds = {r.name: (r.kind, r.sense) for r in model.rows}
    # every shared row holds; from nothing only a mandatory job the greedy could not fit in
    # what the other parts left may be left out
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
