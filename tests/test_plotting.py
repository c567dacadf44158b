"""Plot functions: each draws what it should. Checked on the artists' data, never on pixels."""

from __future__ import annotations

import copy
import io
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from gpualloc.models import Assignment, Instance, Plan
from gpualloc.models.metrics import plan_metrics
from gpualloc.models.rules import objective_of
from gpualloc.models.validator import validate
from gpualloc.present.plotting import (
    cap_series,
    gpu_offsets,
    plot_caps,
    plot_gantt,
    plot_spend,
    plot_utilization,
    plot_value,
    startup_colors,
    utilization_matrix,
)
from tests.conftest import solve_checked

# Under the default regime H800 is 3A090.a (TPP 15832), H20 unrestricted (TPP 2368).
SMALL: dict[str, Any] = {
    "name": "small",
    "horizon": {"periods": 6, "period_hours": 10},
    "clusters": [
        {"id": "cn1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0,
             "capacity": [{"from": 4, "gpus": 4}]},
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 0.5},
        ]},
        {"id": "sg1", "region": "south", "country": "SG", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0},
            {"accelerator": "H20", "gpus": 0, "price_per_gpu_hour": 1.0},
        ]},
    ],
    "startups": [
        {"id": "alpha", "credits": 1000, "weight": 2.0},
        {"id": "beta"},
        {"id": "gamma", "credits": 100},
    ],
    "jobs": [
        {"id": "a1", "startup": "alpha", "value": 10, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 2},
            {"accelerator": "H20", "gpus": 8, "periods": 3, "value": 7}]},
        {"id": "a2", "startup": "alpha", "value": 5, "after": ["a1"], "options": [
            {"accelerator": "H20", "gpus": 4, "periods": 2}]},
        {"id": "b1", "startup": "beta", "value": 3, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 3}]},
        {"id": "b2", "startup": "beta", "value": 4, "options": [
            {"accelerator": "H800", "gpus": 8, "periods": 2}]},
        {"id": "g1", "startup": "gamma", "value": 6, "options": [
            {"accelerator": "H20", "gpus": 4, "periods": 1}]},
        {"id": "huge", "startup": "beta", "value": 50, "options": [
            {"accelerator": "H800", "gpus": 64, "periods": 1}]},
    ],
    "caps": [
        {"id": "cn-tpp", "metric": "tpp", "per": "period", "countries": ["CN"],
         "limit": 200000},
        {"id": "hours", "metric": "gpu_hours", "per": "horizon", "limit": 2000},
        {"id": "roll", "metric": "gpus", "per": "rolling", "length": 2, "limit": 40},
    ],
}


def small() -> Instance:
    return Instance.model_validate(copy.deepcopy(SMALL))


def run(inst: Instance, job: str, option: int, cluster: str, start: int) -> Assignment:
    """An assignment with the cost and value the instance gives it."""
    j = inst.job_by_id[job]
    o = j.options[option]
    return Assignment(job=job, cluster=cluster, accelerator=o.accelerator, gpus=o.gpus,
                      start=start, end=start + o.periods, cost=inst.cost(
                          inst.cluster_by_id[cluster], o), value=j.option_value(o),
                      option=option)


def hand_plan(inst: Instance) -> Plan:
    """A valid plan with stacked and sequential bars on cn1/H800 and a job on each H20."""
    runs = (run(inst, "a1", 0, "cn1", 0), run(inst, "b1", 0, "cn1", 1),
            run(inst, "b2", 0, "sg1", 0), run(inst, "a2", 0, "cn1", 2),
            run(inst, "g1", 0, "cn1", 5))
    done = {a.job for a in runs}
    return Plan(instance=inst.name, status="feasible", objective=objective_of(inst, runs),
                backend="hand", assignments=runs,
                unscheduled=tuple(j.id for j in inst.jobs if j.id not in done))


@pytest.fixture(scope="module")
def inst() -> Instance:
    return small()


@pytest.fixture(scope="module")
def plan(inst: Instance) -> Plan:
    p = hand_plan(inst)
    assert validate(inst, p) == []
    return p


@pytest.fixture(scope="module")
def solved(inst: Instance) -> Plan:
    p = solve_checked(inst, "cpsat", time_limit=30)
    assert validate(inst, p) == []
    assert p.assignments
    return p


def bars(ax: Any) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


# -- Gantt -------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["hand", "solved"])
def test_gantt_has_one_bar_per_assignment_at_its_periods(inst: Instance, plan: Plan,
                                                         solved: Plan, which: str) -> None:
    p = plan if which == "hand" else solved
    for cluster in inst.clusters:
        for pool in cluster.pools:
            ax = plot_gantt(inst, p, cluster.id, pool.accelerator)
            runs = [a for a in p.assignments
                    if (a.cluster, a.accelerator) == (cluster.id, pool.accelerator)]
            drawn = bars(ax)
            assert len(drawn) == len(runs)
            got = sorted((r.get_x(), r.get_width(), r.get_height()) for r in drawn)
            assert got == sorted((a.start, a.periods, a.gpus) for a in runs)
            # bars running at the same time never overlap in the GPU dimension
            for k, r in enumerate(drawn):
                for s in drawn[k + 1:]:
                    in_time = r.get_x() < s.get_x() + s.get_width() and \
                        s.get_x() < r.get_x() + r.get_width()
                    in_gpus = r.get_y() < s.get_y() + s.get_height() and \
                        s.get_y() < r.get_y() + r.get_height()
                    assert not (in_time and in_gpus)
            labels = {t.get_text() for t in ax.texts}
            for a in runs:
                assert any(t.startswith(a.job) and f"{a.gpus:,} GPU" in t for t in labels)


def test_gantt_colours_bars_by_startup_and_draws_capacity(inst: Instance, plan: Plan) -> None:
    ax = plot_gantt(inst, plan, "cn1", "H800")
    colors = startup_colors(inst)
    by_start = {a.start: inst.job_by_id[a.job].startup for a in plan.assignments
                if (a.cluster, a.accelerator) == ("cn1", "H800")}
    for r in bars(ax):
        assert r.get_facecolor() == pytest.approx(colors[by_start[int(r.get_x())]])
    assert len({tuple(r.get_facecolor()) for r in bars(ax)}) == 2  # alpha and beta
    capacity = next(line for line in ax.lines if line.get_label() == "capacity")
    assert list(capacity.get_ydata()) == [8, 8, 8, 8, 4, 4, 4]
    # a1 (4 GPUs, periods 0-1) and b1 (4 GPUs, periods 1-3) overlap: stacked, not overlaid
    assert sorted(r.get_y() for r in bars(ax)) == [0, 4]


def test_gantt_on_given_axes_and_empty_pool(inst: Instance, plan: Plan) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_gantt(inst, plan, "sg1", "H20", ax=ax) is ax
    assert bars(ax) == []
    assert plot_gantt(inst, plan, "sg1", "H800").figure is not fig
    with pytest.raises(ValueError, match="no pool"):
        plot_gantt(inst, plan, "cn1", "B200")


def test_gpu_offsets_pack_without_overlap(inst: Instance) -> None:
    runs = [run(inst, "b1", 0, "cn1", 0), run(inst, "a1", 0, "cn1", 1),
            run(inst, "b1", 0, "cn1", 3), run(inst, "g1", 0, "cn1", 2)]
    offsets = gpu_offsets(runs)
    assert offsets[0] == 0
    assert offsets[1] == 4  # overlaps the first in time
    assert offsets[2] == 0  # the first has ended by period 3
    assert offsets[3] == 8  # periods 2: both b1@0 and a1@1 run


# -- utilization -------------------------------------------------------------------------------
def test_utilization_heatmap_is_the_utilization(inst: Instance, plan: Plan) -> None:
    ax = plot_utilization(inst, plan)
    pools = plan_metrics(inst, plan)["pools"]
    image = ax.images[0]
    data = image.get_array()
    assert data.shape == (len(pools), inst.horizon.periods)
    for k, p in enumerate(pools.values()):
        for t, u in enumerate(p["utilization"]):
            if u is None:
                assert data.mask[k, t]
            else:
                assert data[k, t] == pytest.approx(u)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(pools)
    assert len(ax.figure.axes) == 2  # the heatmap and its colour bar
    labels, matrix = utilization_matrix(inst, plan)
    assert labels == list(pools)
    assert np.isnan(matrix[labels.index("sg1/H20")]).all()


# -- caps --------------------------------------------------------------------------------------
def test_caps_per_period_use_and_limit(inst: Instance, solved: Plan) -> None:
    windows = plan_metrics(inst, solved)["caps"]["cn-tpp"]["windows"]
    ax = plot_caps(inst, solved, cap_id="cn-tpp")
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["use"].get_ydata()) == pytest.approx([w["use"] for w in windows])
    assert list(lines["use"].get_xdata()) == list(range(inst.horizon.periods))
    assert list(lines["limit"].get_ydata()) == [200000] * inst.horizon.periods
    assert max(lines["use"].get_ydata()) > 0


def test_caps_horizon_is_cumulative_and_rolling_per_window(inst: Instance, plan: Plan) -> None:
    m = plan_metrics(inst, plan)
    ax = plot_caps(inst, plan, cap_id="hours")
    use = list(next(x for x in ax.lines if x.get_label() == "use").get_ydata())
    assert len(use) == inst.horizon.periods
    assert use == sorted(use)  # cumulative
    assert use[-1] == pytest.approx(m["caps"]["hours"]["windows"][0]["use"])
    assert use[-1] == pytest.approx(sum(a.gpus * a.periods * 10 for a in plan.assignments))
    roll = cap_series(inst, plan, inst.caps[2])
    assert roll.x == [1, 2, 3, 4, 5]  # windows of 2 periods, by their last period
    assert roll.use == pytest.approx([w["use"] for w in m["caps"]["roll"]["windows"]])


def test_caps_overview_is_use_over_limit(inst: Instance, plan: Plan) -> None:
    m = plan_metrics(inst, plan)
    ax = plot_caps(inst, plan)
    lines: dict[str, Line2D] = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"cn-tpp", "hours", "roll", "limit"}
    tpp = m["caps"]["cn-tpp"]["windows"]
    assert list(lines["cn-tpp"].get_ydata()) == pytest.approx(
        [w["use"] / w["limit"] for w in tpp])
    assert set(lines["limit"].get_ydata()) == {1.0}
    with pytest.raises(ValueError, match="no cap"):
        plot_caps(inst, plan, cap_id="nope")


def test_caps_without_caps(plan: Plan) -> None:
    data = copy.deepcopy(SMALL)
    data["caps"] = []
    uncapped = Instance.model_validate(data)
    ax = plot_caps(uncapped, plan)
    assert len(ax.lines) == 0
    assert "no caps" in ax.texts[0].get_text()


# -- spend and value ---------------------------------------------------------------------------
def test_spend_vs_credits(inst: Instance, plan: Plan) -> None:
    startups = plan_metrics(inst, plan)["startups"]
    ax = plot_spend(inst, plan)
    containers = {c.get_label(): c for c in ax.containers}
    spend = [r.get_height() for r in containers["spend"]]
    credits = [r.get_height() for r in containers["credits"]]
    assert spend == pytest.approx([s["spend"] for s in startups.values()])
    assert credits == pytest.approx([s["credits"] or 0.0 for s in startups.values()])
    assert spend[1] > 0 and credits[1] == 0  # beta: unlimited credits
    assert any(t.get_text() == "unlimited" for t in ax.texts)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(startups)


def test_value_per_startup(inst: Instance, plan: Plan) -> None:
    startups = plan_metrics(inst, plan)["startups"]
    ax = plot_value(inst, plan)
    containers = {c.get_label(): c for c in ax.containers}
    assert [r.get_height() for r in containers["value"]] == pytest.approx(
        [s["value"] for s in startups.values()])
    assert [r.get_height() for r in containers["weighted value"]] == pytest.approx(
        [s["weighted_value"] for s in startups.values()])
    assert {"2/2", "2/3", "1/1"} <= {t.get_text() for t in ax.texts}


def test_plots_of_an_empty_plan(inst: Instance) -> None:
    empty = Plan(instance=inst.name, status="infeasible",
                 unscheduled=tuple(j.id for j in inst.jobs))
    assert validate(inst, empty) == []
    assert bars(plot_gantt(inst, empty, "cn1", "H800")) == []
    assert not np.nanmax(utilization_matrix(inst, empty)[1])
    ax = plot_caps(inst, empty, cap_id="cn-tpp")
    assert set(next(x for x in ax.lines if x.get_label() == "use").get_ydata()) == {0.0}
    assert all(r.get_height() == 0 for r in plot_value(inst, empty).containers[0])
    assert all(not math.isnan(r.get_height()) for r in plot_spend(inst, empty).patches)


def test_no_pyplot(inst: Instance, plan: Plan) -> None:
    """The library never uses pyplot (no global figure state, no display needed)."""
    import gpualloc.present.plotting
    import gpualloc.present.report

    for module in (gpualloc.present.plotting, gpualloc.present.report):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        assert "pyplot" not in source.replace("never pyplot", "")
    before = "matplotlib.pyplot" in sys.modules
    ax = plot_gantt(inst, plan, "cn1", "H800")
    ax.figure.savefig(io.BytesIO(), format="png")
    assert isinstance(ax.figure, Figure)
    if not before:  # another test may have imported it; then this check proves nothing
        assert "matplotlib.pyplot" not in sys.modules
