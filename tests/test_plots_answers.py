"""Plots a planner can read: Gantt labels only where they fit (the rest in the legend), dates
on the axes when the horizon has a start, cap titles that say the window, and a what-if plot
that marks scenarios without a plan and labels the base line."""

from __future__ import annotations

import copy
from typing import Any

from gpualloc.analysis.whatif import ScenarioResult, study_figure
from gpualloc.models import Instance, Plan
from gpualloc.models.rules import objective_of
from gpualloc.models.validator import validate
from gpualloc.present.plotting import plot_caps, plot_gantt, plot_utilization
from tests.test_plotting import SMALL, run

NARROW: dict[str, Any] = {
    "name": "narrow",
    "horizon": {"periods": 26, "period_hours": 168, "start": "2025-01-06"},
    "clusters": [{"id": "sz-1", "region": "south", "country": "CN", "pools": [
        {"accelerator": "L20", "gpus": 2048, "price_per_gpu_hour": 0.0}]}],
    "startups": [{"id": "s"}],
    "jobs": [
        {"id": "yi-enterprise-serving", "startup": "s", "value": 5,
         "options": [{"accelerator": "L20", "gpus": 1024, "periods": 26}]},
        {"id": "kimi-k15-eval-long-name", "startup": "s", "value": 1,
         "options": [{"accelerator": "L20", "gpus": 16, "periods": 1}]},
    ],
}


def _narrow() -> tuple[Instance, Plan]:
    inst = Instance.model_validate(copy.deepcopy(NARROW))
    runs = (run(inst, "yi-enterprise-serving", 0, "sz-1", 0),
            run(inst, "kimi-k15-eval-long-name", 0, "sz-1", 23))
    plan = Plan(instance=inst.name, status="feasible", objective=objective_of(inst, runs),
                assignments=runs)
    assert validate(inst, plan) == []
    return inst, plan


def test_gantt_labels_only_what_fits_and_lists_the_rest() -> None:
    inst, plan = _narrow()
    ax = plot_gantt(inst, plan, "sz-1", "L20")
    inside = [t.get_text() for t in ax.texts]
    assert any(t.startswith("yi-enterprise-serving") for t in inside)  # the wide block
    assert not any("kimi-k15-eval" in t for t in inside)  # 16 GPUs for 1 period: no room
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("kimi-k15-eval-long-name (16 GPUs, period 23)" in t for t in legend)
    assert not any("yi-enterprise-serving" in t for t in legend)


def test_axes_show_dates_when_the_horizon_has_a_start() -> None:
    inst, plan = _narrow()
    for ax in (plot_gantt(inst, plan, "sz-1", "L20"), plot_utilization(inst, plan)):
        fmt = ax.xaxis.get_major_formatter()
        assert fmt(0) == "0\n2025-01-06" and fmt(2) == "2\n2025-01-20"
        assert "date" in ax.get_xlabel()
    plain = Instance.model_validate(copy.deepcopy(SMALL))
    ax = plot_utilization(plain, Plan(instance=plain.name, status="feasible", objective=0.0))
    assert ax.get_xlabel() == "period"


def test_cap_titles_name_the_window() -> None:
    inst = Instance.model_validate(copy.deepcopy(SMALL))
    empty = Plan(instance=inst.name, status="feasible", objective=0.0)
    titles = {c: plot_caps(inst, empty, cap_id=c).get_title() for c in ("roll", "hours",
                                                                         "cn-tpp")}
    assert titles == {"roll": "Cap roll: gpus per rolling 2-period window",
                      "hours": "Cap hours: gpu_hours over the horizon",
                      "cn-tpp": "Cap cn-tpp: tpp per period"}


def test_whatif_plot_marks_a_scenario_without_a_plan() -> None:
    inst = Instance.model_validate(copy.deepcopy(SMALL))
    base = Plan(instance=inst.name, status="optimal", objective=12.0, bound=12.0, gap=0.0)
    none = Plan(instance=inst.name, status="infeasible")
    fig = study_figure([ScenarioResult("base", inst, base, {}),
                        ScenarioResult("cap-zero", inst, none, {})])
    ax = fig.axes[0]
    marks = [line for line in ax.lines if line.get_label().startswith("no plan")]
    assert len(marks) == 1 and list(marks[0].get_ydata()) == [1]
    assert marks[0].get_color() == "#c44e52"
    assert any(line.get_label() == "base (base) objective" for line in ax.lines)
    assert any("no plan (infeasible)" in t.get_text() for t in ax.texts)
