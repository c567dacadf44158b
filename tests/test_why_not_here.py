"""One wording of "why can't this job run here" (models.rules.why_not_here), shared by
explain's reasons, the report and re-planning."""

from __future__ import annotations

from typing import Any

from gpualloc import analysis, optimizer
from gpualloc.models import Assignment, Instance
from gpualloc.models.rules import why_not_here
from gpualloc.optimizer.model.replan import why_missing
from gpualloc.present.report import unscheduled_reasons
from tests.conftest import check_plan

DATA: dict[str, Any] = {
    "name": "here",
    "horizon": {"periods": 2, "period_hours": 1},
    "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
        {"accelerator": "H800", "gpus": 64, "price_per_gpu_hour": 1, "max_gpus_per_job": 8}]}],
    "startups": [{"id": "s"}],
    "jobs": [{"id": "ok", "startup": "s", "value": 1,
              "options": [{"accelerator": "H800", "gpus": 8, "periods": 1}]},
             {"id": "wide", "startup": "s", "value": 5,
              "options": [{"accelerator": "H800", "gpus": 16, "periods": 1}]}],
}


def test_explain_report_and_replan_say_it_the_same_way() -> None:
    inst = Instance.model_validate(DATA)
    cluster = inst.cluster_by_id["c"]
    text = why_not_here(inst, inst.job_by_id["wide"], "H800", 16, cluster)
    assert text == "c/H800 takes at most 8 GPUs per job"
    assert why_not_here(inst, inst.job_by_id["ok"], "H800", 8, cluster) is None
    plan = optimizer.solve(inst, time_limit=10)
    check_plan(inst, plan)
    assert plan.unscheduled == ("wide",)
    assert text in analysis.explain(inst, plan).reason("wide").detail
    assert text in unscheduled_reasons(inst, plan)["wide"]
    frozen = Assignment(job="wide", cluster="c", accelerator="H800", gpus=16, start=0, end=1,
                        cost=16.0, value=5.0)
    assert text in why_missing(inst, frozen)
