"""explain's smallest relaxation is the exact minimum (proven: feasible at it, infeasible just
below), and jobs that have a way around the relaxed limits are not named in the conflict."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from gpualloc import analysis, optimizer
from gpualloc.analysis import Relaxation
from gpualloc.models import Instance, SolveStatus
from tests.conftest import check_plan

PORTFOLIO = Path(__file__).resolve().parents[2] / "instances" / "portfolio.yaml"
FLAGSHIPS = ("kimi-k15-pretrain", "glm-5-pretrain", "step-2-pretrain")
H800_TPP = 15832


def _flagships_on_h800(limit: float) -> Instance:
    """The portfolio with the three flagship pretrains mandatory on H800 only (1,024 GPUs for
    periods 2-7 each, all in China) and restricted-cn at ``limit``."""
    data: dict[str, Any] = yaml.safe_load(PORTFOLIO.read_text())
    for j in data["jobs"]:
        if j["id"] in FLAGSHIPS:
            j["mandatory"] = True
            j["options"] = [o for o in j["options"] if o["accelerator"] == "H800"]
    next(c for c in data["caps"] if c["id"] == "restricted-cn")["limit"] = limit
    return Instance.model_validate(data)


def test_portfolio_case_relaxation_is_the_exact_minimum() -> None:
    # The three pretrains overlap in periods 2-7 with 3 x 1,024 H800 (3A090.a) in China: the
    # cap must hold 3 x 1,024 x 15,832 = 48,635,904 TPP, nothing more (the mandatory serving
    # jobs have unrestricted H20 options). The old elastic solve said +27,398,144.
    need = 3 * 1024 * H800_TPP
    inst = _flagships_on_h800(need / 2)
    ex = analysis.explain(inst, time_limit=30)
    assert not ex.feasible
    assert ex.relaxations == [Relaxation("cap", "restricted-cn", need / 2, "tpp", need / 2,
                                         float(need), (2, 7))]
    assert ex.verified is True, ex.verification
    assert ex.minimal is True, ex.minimality
    assert "just below): infeasible" in ex.minimality
    text = str(ex)
    assert "proven minimal" in text and "48,635,904" in text
    # chatglm-serving (Ascend or H20) can avoid the cap: not part of the conflict.
    assert {c.name for c in ex.conflicts if c.kind == "mandatory"} == set(FLAGSHIPS)
    assert ex.relaxed_instance is not None
    check_plan(ex.relaxed_instance, optimizer.solve(ex.relaxed_instance, "cpsat"))


BASE: dict[str, Any] = {
    "name": "alt",
    "horizon": {"periods": 2, "period_hours": 10.0},
    "clusters": [{"id": "c1", "region": "r", "country": "US", "pools": [
        {"accelerator": "H800", "gpus": 12, "price_per_gpu_hour": 1.0},
        {"accelerator": "H20", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
    "startups": [{"id": "s"}],
    "jobs": [
        {"id": "a", "startup": "s", "value": 1, "mandatory": True,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2}]},
        {"id": "b", "startup": "s", "value": 1, "mandatory": True,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2}]},
        {"id": "c", "startup": "s", "value": 1, "mandatory": True,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2},
                     {"accelerator": "H20", "gpus": 8, "periods": 2}]},
    ],
}


def test_job_with_an_alternative_is_not_in_the_conflict() -> None:
    # a and b need 16 H800 of 12: +4 GPUs; c fits on H20 and is no part of the conflict.
    ex = analysis.explain(Instance.model_validate(copy.deepcopy(BASE)), time_limit=10)
    assert ex.relaxations == [Relaxation("capacity", "c1/H800", 4.0, "GPUs", 12.0, 16.0,
                                         (0, 1))]
    assert ex.minimal is True, ex.minimality
    assert {c.name for c in ex.conflicts if c.kind == "mandatory"} == {"a", "b"}
    # one line per requirement, its subject named once
    assert "mandatory a: mandatory job a" not in str(ex)
    assert "capacity capacity[" not in str(ex)


def test_str_is_the_readable_report() -> None:
    ex = analysis.explain(Instance.model_validate(copy.deepcopy(BASE)), time_limit=10)
    assert str(ex) == "\n".join(ex.lines())
    assert "Plan(" not in repr(ex) and "Plan(" not in str(ex)
    assert ex.plan is not None and ex.plan.status == SolveStatus.INFEASIBLE
