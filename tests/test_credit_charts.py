"""The tranche and share sections of the CLI summary and the report (present.credit_charts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from gpualloc.models import Instance, load_instance
from gpualloc.models.metrics import plan_metrics
from gpualloc.present.credit_charts import (
    fairness_lines,
    plot_shares,
    plot_spend_over_time,
    share_text,
    tranche_lines,
)
from gpualloc.present.report import build_report
from tests.conftest import solve_checked
from tests.models.test_tranches import tiny

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def solved() -> tuple[Instance, object]:
    data = tiny([{"from": 0, "credits": 4}, {"from": 2, "credits": 6}], min_share=0.2)
    data["objective"] = {"kind": "maxmin"}
    inst = Instance.model_validate(data)
    return inst, solve_checked(inst, "cpsat")


def test_spend_over_time_has_one_spend_line_per_startup(solved) -> None:
    inst, plan = solved
    ax = plot_spend_over_time(inst, plan)
    assert isinstance(ax.figure, Figure)
    solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(solid) == len(inst.startups)
    assert len(dashed) == 1  # b is unlimited: no released line
    spend = plan_metrics(inst, plan)["startups"]["a"]["spend_by_period"]
    assert list(solid[0].get_ydata()) == pytest.approx(list(_cumsum(spend)))
    assert list(dashed[0].get_ydata()) == [4, 4, 10, 10]


def _cumsum(xs: list[float]) -> list[float]:
    out, total = [], 0.0
    for x in xs:
        total += x
        out.append(total)
    return out


def test_shares_bars_and_text(solved) -> None:
    inst, plan = solved
    m = plan_metrics(inst, plan)
    ax = plot_shares(inst, plan, metrics=m)
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([m["startups"]["a"]["share"], m["startups"]["b"]["share"]])
    lines = fairness_lines(plan)
    assert len(lines) == 2 and lines[0].startswith("max-min stage 1: smallest share m*")
    assert [line.split(" (")[0] for line in tranche_lines(inst, m)] == ["a tranche 0",
                                                                        "a tranche 1"]


def test_report_has_the_sections() -> None:
    inst = load_instance(REPO / "instances" / "portfolio-tranches.yaml")
    plan = solve_checked(inst, "cpsat")
    rep = build_report(inst, plan)
    names = {f.name for f in rep.figures}
    assert "spend-over-time" in names and "shares" not in names  # no fairness in it
    page = rep.html()
    assert "<h2>Credit tranches</h2>" in page and "<h2>Shares</h2>" in page
    assert f"moonshot {share_text(rep.metrics, 'moonshot')}" in page
    assert "moonshot tranche 1" in rep.markdown()


def test_report_of_a_maxmin_plan_draws_the_shares(solved) -> None:
    inst, plan = solved
    rep = build_report(inst, plan)
    assert "shares" in {f.name for f in rep.figures}
    assert "max-min stage 2" in rep.markdown()
