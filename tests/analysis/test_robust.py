"""Robust and adaptive plans: validity in every case, non-anticipativity, the regret table.

The instance is built so that the answers can be worked out by hand. One cluster, an H800
pool of 8 GPUs and an H20 pool of 4, horizon 6. Jobs j1 (10), j2 (8), j4 (5, from period 4)
need the 8 H800 for 2 periods; j3 takes them for 2 periods (6) or 4 H20 for 5 periods (0.5,
so it must start by period 1). Risk ``outage`` (p = 0.6): the H800 pool is gone from period 4.

- nominal optimum: j1, j2, j3 on H800 = 24 (the H20 hedge plus j4 gives only 23.5);
- outage optimum: j1, j2 on H800 by period 4, j3 on H20 from 0 or 1 = 18.5;
- robust (valid in both): 18.5 in both cases, expected 18.5;
- adaptive, deciding by period 2: hedge now (j3 on H20) then j4 in the nominal case:
  0.4 * 23.5 + 0.6 * 18.5 = 20.5, against 0.4 * 24 + 0.6 * 18 = 20.4 without the hedge;
- the nominal plan re-planned from 2: 24 nominal, 18 in the outage (the hedge is past): 20.4;
- perfect information: 0.4 * 24 + 0.6 * 18.5 = 20.7.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpualloc.analysis.robust import RobustResult, best_known, robust
from gpualloc.analysis.robust_model import extensive_model, joint_model
from gpualloc.cli import app
from gpualloc.models import Instance, Plan, SolveStatus, compute_gap
from gpualloc.models.risks import cases, parse_risks
from gpualloc.models.validator import validate
from gpualloc.optimizer import build
from tests.conftest import EXACT_BACKENDS, check_plan, close

REPO = Path(__file__).resolve().parents[2]


def _job(jid: str, value: float, options: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"id": jid, "startup": "s", "value": value, "options": options, **kw}


H800 = {"accelerator": "H800", "gpus": 8, "periods": 2}
BASE: dict[str, Any] = {
    "name": "hedge",
    "horizon": {"periods": 6, "period_hours": 1},
    "clusters": [{"id": "c1", "region": "r", "country": "MY", "pools": [
        {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0},
        {"accelerator": "H20", "gpus": 4, "price_per_gpu_hour": 1.0}]}],
    "startups": [{"id": "s"}],
    "jobs": [
        _job("j1", 10, [H800]), _job("j2", 8, [H800]),
        _job("j3", 6, [H800, {"accelerator": "H20", "gpus": 4, "periods": 5, "value": 0.5}]),
        _job("j4", 5, [H800], release=4),
    ],
}
RISKS = {"risks": [{"name": "outage", "probability": 0.6, "changes": [
    {"kind": "pool_gpus", "cluster": "c1", "accelerator": "H800", "add": -8, "from": 4}]}]}


@pytest.fixture(scope="module")
def base() -> Instance:
    return Instance.model_validate(BASE)


def _run(base: Instance, mode: str, backend: str = "cpsat", **kw: Any) -> RobustResult:
    return robust(base, parse_risks(RISKS, base=base), mode=mode,  # type: ignore[arg-type]
                  decide_by=2, time_limit=20, backend=backend, **kw)


def _check_every_plan(result: RobustResult) -> None:
    """Every plan of the result passes the validator against its case's instance, and every
    per-case bound is proven."""
    for c in result.cases:
        assert c.plan is not None
        assert validate(c.instance, c.plan) == [], c.name
        check_plan(c.instance, c.plan)
        check_plan(c.instance, c.optimum)
        assert c.optimum.status == SolveStatus.OPTIMAL and c.optimum.bound is not None
        assert c.nominal is not None
        check_plan(c.instance, c.nominal)
    assert result.status == SolveStatus.OPTIMAL and result.bound is not None
    assert close(result.objective, result.expected_value)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_robust_plan_is_valid_in_every_case(base: Instance, backend: str) -> None:
    result = _run(base, "robust", backend)
    _check_every_plan(result)
    keys = [{(a.job, a.cluster, a.accelerator, a.start) for a in c.plan.assignments}
            for c in result.cases if c.plan is not None]
    assert all(k == keys[0] for k in keys)  # one plan
    assert result.plan is not None and validate(base, result.plan) == []
    assert close(result.expected_value, 18.5)
    assert [c.optimum.objective for c in result.cases] == pytest.approx([24.0, 18.5])
    assert [c.regret for c in result.cases] == pytest.approx([5.5, 0.0])


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_adaptive_first_stage_is_common(base: Instance, backend: str) -> None:
    result = _run(base, "adaptive", backend)
    _check_every_plan(result)
    assert result.plan is not None
    first = {a for a in result.plan.assignments}
    assert first and all(a.start < 2 for a in first)
    for c in result.cases:
        assert c.plan is not None
        assert {a for a in c.plan.assignments if a.start < 2} == first
        assert all(a.start >= 2 for a in c.recourse)
    assert close(result.expected_value, 20.5)
    assert close(result.nominal_expected, 20.4)
    assert close(result.perfect_information, 20.7)
    assert close(result.evpi, 0.2) and close(result.vss, 0.1)


def test_adaptive_beats_robust_and_the_nominal_plan(base: Instance) -> None:
    rob, ada = _run(base, "robust"), _run(base, "adaptive")
    slack = (ada.bound or 0.0) - (ada.objective or 0.0)  # up to the gaps
    assert ada.expected_value is not None and rob.expected_value is not None
    assert ada.expected_value >= rob.expected_value - slack - 1e-6
    assert ada.expected_value >= (ada.nominal_expected or 0.0) - slack - 1e-6
    assert ada.perfect_information_bound is not None
    assert ada.perfect_information_bound >= ada.expected_value - 1e-6
    assert rob.cases[1].nominal_value == ada.cases[1].nominal_value  # same re-plan column


def test_local_processes_give_the_same_table(base: Instance) -> None:
    serial, parallel = _run(base, "robust"), _run(base, "robust", workers=2)
    drop = ("optimum_gap",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in serial.rows()] == \
        [{k: v for k, v in r.items() if k not in drop} for r in parallel.rows()]


def test_joint_and_extensive_models(base: Instance) -> None:
    all_cases = cases(base, parse_risks(RISKS, base=base))
    models = [build(c.instance) for c in all_cases]
    joint = joint_model(models, [0.4, 0.6], ["nominal", "outage"])
    later = {(p.job, p.cluster, p.accelerator, p.option, p.start) for p in models[1].placements}
    assert joint.placements and all(
        (p.job, p.cluster, p.accelerator, p.option, p.start) in later for p in joint.placements)
    assert not any(p.job == "j4" for p in joint.placements)  # absent in the outage
    ext, offsets = extensive_model(models, [0.4, 0.6], ["nominal", "outage"], decide_by=2)
    assert offsets == [0, models[0].num_vars]
    assert ext.num_vars == models[0].num_vars + models[1].num_vars
    links = [r for r in ext.rows if r.kind == "link"]
    first = [p for p in models[0].placements if p.start < 2]
    assert len(links) == len(first)  # every first-stage placement exists in both cases
    assert ext.trivial_bound() >= joint.trivial_bound()


def test_a_mandatory_job_impossible_in_some_case_makes_robust_infeasible(
        base: Instance) -> None:
    data = {**BASE, "jobs": [*BASE["jobs"][:3], _job("j4", 5, [H800], release=4,
                                                       mandatory=True)]}
    inst = Instance.model_validate(data)
    result = robust(inst, parse_risks(RISKS, base=inst), mode="robust", decide_by=2,
                    time_limit=10)
    assert result.status == SolveStatus.INFEASIBLE
    assert result.plan is None and all(c.plan is None for c in result.cases)
    assert result.expected_value is None
    assert result.cases[1].optimum.status == SolveStatus.INFEASIBLE


def test_bad_decide_by(base: Instance) -> None:
    risks = parse_risks(RISKS, base=base)
    for bad in (-1, 7):
        with pytest.raises(ValueError, match="decide_by"):
            robust(base, risks, decide_by=bad)


def test_cli_bad_file_exits_2_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "risks.yaml"
    bad.write_text("risks:\n  - {name: a, probability: 2, changes: []}\n"
                   "  - {name: b, probability: 0.1, changes: [{kind: pool_gpus, cluster: x, "
                   "accelerator: H20, add: 1}]}\n")
    portfolio = str(REPO / "instances" / "portfolio.yaml")
    res = CliRunner().invoke(app, ["robust", portfolio, str(bad)])
    assert res.exit_code == 2
    assert "risks[0].probability" in res.output
    assert "risks[1].changes[0].cluster: unknown cluster 'x'" in res.output
    assert "Traceback" not in res.output
    for bad_period in ("27", "-1"):
        res = CliRunner().invoke(app, ["robust", portfolio,
                                       str(REPO / "instances" / "risks.yaml"),
                                       "--decide-by", bad_period])
        assert res.exit_code == 2 and "--decide-by" in res.output


def test_cli_bundled_example(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, [
        "robust", str(REPO / "instances" / "portfolio.yaml"),
        str(REPO / "instances" / "risks.yaml"), "--time-limit", "60",
        "--out", str(tmp_path / "out"), "--report", str(tmp_path / "robust.html")])
    assert res.exit_code == 0, res.output
    for name in ("nominal", "h20-licence-revoked", "ascend-delivery-slips",
                 "restricted-cn-tightened"):
        assert name in res.output
        assert (tmp_path / "out" / f"{name}.plan.json").is_file()
    assert (tmp_path / "out" / "robust.csv").read_text().startswith("case,probability")
    page = (tmp_path / "robust.html").read_text()
    assert "Regret table" in page and "data:image/png;base64," in page


def test_best_known_keeps_the_case_bound() -> None:
    def plan(objective: float, bound: float | None, status: SolveStatus) -> Plan:
        return Plan(instance="x", status=status, objective=objective, bound=bound,
                    gap=compute_gap(objective, bound))

    solved = plan(10.0, 12.0, SolveStatus.FEASIBLE)
    assert best_known(solved, [None, plan(9.0, None, SolveStatus.FEASIBLE)], 1e-6) is solved
    better = best_known(solved, [plan(11.0, None, SolveStatus.FEASIBLE)], 1e-6)
    assert (better.objective, better.bound, better.status) == (11.0, 12.0,
                                                               SolveStatus.FEASIBLE)
    proven = best_known(solved, [plan(12.0, None, SolveStatus.FEASIBLE)], 1e-6)
    assert proven.status == SolveStatus.OPTIMAL and proven.gap == 0.0


def test_replanned_nominal_plans_are_a_solution_of_the_extensive_model(base: Instance) -> None:
    """The adaptive warm start: the nominal plan re-planned in every case satisfies every row
    of the extensive model, non-anticipativity included."""
    result = _run(base, "adaptive")
    models = [build(c.instance) for c in result.cases]
    ext, _ = extensive_model(models, [c.probability for c in result.cases],
                             [c.name for c in result.cases], decide_by=2)
    warm = [a.model_copy(update={"job": f"{k}|{a.job}"})
            for k, c in enumerate(result.cases) if c.nominal is not None
            for a in c.nominal.assignments]
    assert len(warm) == sum(len(c.nominal.assignments) for c in result.cases if c.nominal)
    values = ext.encode(warm)
    assert sum(values) == len(warm) and ext.check(values) == []
    assert close(ext.objective_value(values), result.nominal_expected)


@pytest.mark.parametrize(("decide_by", "expected"), [(0, 20.7), (6, 18.5)])
def test_decision_period_extremes(base: Instance, decide_by: int, expected: float) -> None:
    """Deciding at period 0 is perfect information (EVPI 0); deciding at the horizon commits
    everything now, which is the robust plan."""
    result = robust(base, parse_risks(RISKS, base=base), mode="adaptive",
                    decide_by=decide_by, time_limit=20)
    _check_every_plan(result)
    assert close(result.expected_value, expected)
    if decide_by == 0:
        assert close(result.evpi, 0.0)
    else:
        keys = [{(a.job, a.start) for a in c.plan.assignments} for c in result.cases
                if c.plan is not None]
        assert keys[0] == keys[1]


def test_cli_refuses_unwritable_outputs_before_solving(tmp_path: Path) -> None:
    args = ["robust", str(REPO / "instances" / "portfolio.yaml"),
            str(REPO / "instances" / "risks.yaml"), "--time-limit", "60"]
    plain = tmp_path / "a-file"
    plain.write_text("x")
    for extra, said in ((["--out", str(plain)], "not a folder"),
                        (["--report", str(tmp_path)], "is a directory")):
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code == 2, res.output
        assert said in res.output and "Regret" not in res.output
        assert "Traceback" not in res.output
