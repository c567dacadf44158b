"""Answers a planner can act on (issue 15): plans from another instance refused, empty
instances warned, the catalog under the instance's regime, ``optimal`` only for a proven gap
of 0, bounds shown always the tightest known, values past the horizon refused, greedy's bound
documented in the help."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gpualloc import optimizer
from gpualloc.cli import app
from gpualloc.models import Instance, SolveStatus, load_instance, load_plan
from gpualloc.optimizer.backends import BackendResult, Capabilities, Progress, SolveParams
from gpualloc.optimizer.model.formulation import LinearModel
from tests.conftest import check_plan

runner = CliRunner()
INSTANCE: dict[str, Any] = {
    "name": "mine",
    "horizon": {"periods": 4, "period_hours": 10},
    "regime": "jan2026",
    "clusters": [{"id": "cn1", "region": "east", "country": "CN", "pools": [
        {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
    "startups": [{"id": "alpha"}],
    "jobs": [{"id": "a", "startup": "alpha", "value": 10,
              "options": [{"accelerator": "H800", "gpus": 4, "periods": 2}]},
             {"id": "b", "startup": "alpha", "value": 7,
              "options": [{"accelerator": "H800", "gpus": 8, "periods": 3}]}],
}


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(INSTANCE))
    other = copy.deepcopy(INSTANCE)
    other["name"] = "other"
    theirs = tmp_path / "other.yaml"
    theirs.write_text(yaml.safe_dump(other))
    plan = tmp_path / "plan.json"
    r = runner.invoke(app, ["solve", str(mine), "--out", str(plan), "--quiet"])
    assert r.exit_code == 0, r.output
    return {"mine": mine, "other": theirs, "plan": plan, "dir": tmp_path}


@pytest.mark.parametrize("command", [
    ["validate", "{other}", "{plan}"],
    ["solve", "{other}", "--warm-start", "{plan}", "--quiet"],
    ["solve", "{other}", "--previous", "{plan}", "--now", "1", "--quiet"],
    ["explain", "{other}", "{plan}"],
    ["report", "{other}", "{plan}", "--md"],
    ["caps", "{other}", "{plan}"],
])
def test_plan_of_another_instance_is_refused(files: dict[str, Path],
                                             command: list[str]) -> None:
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in command]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "plan is for 'mine', not 'other'" in r.output
    assert r.output.count("\n") <= 2  # one line, not one per unknown job
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code in (0, 1), forced.output
    assert "plan is for 'mine', not 'other'" in forced.output  # still warned


@pytest.mark.parametrize("jobs", ["absent", []])
def test_instance_without_jobs_warns(tmp_path: Path, jobs: Any) -> None:
    data = {k: v for k, v in INSTANCE.items() if k != "jobs"}
    if jobs != "absent":
        data["jobs"] = jobs
    path = tmp_path / "empty.yaml"
    path.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["solve", str(path), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "jobs: the instance has no jobs" in r.output


def test_catalog_uses_the_instance_regime(files: dict[str, Path]) -> None:
    r = runner.invoke(app, ["catalog", "--instance", str(files["mine"])])
    assert r.exit_code == 0, r.output
    assert "under jan2026" in r.output
    h20 = next(line for line in r.output.splitlines() if line.split("│")[1:2] and
               line.split("│")[1].strip() == "H20")
    assert "3A090.b" in h20  # H20 is licensed case by case under jan2026, unrestricted before
    r = runner.invoke(app, ["catalog", "--instance", str(files["mine"]), "--regime", "oct2023"])
    assert "under oct2023" in r.output


def test_now_past_the_horizon_is_refused(files: dict[str, Path]) -> None:
    r = runner.invoke(app, ["solve", str(files["mine"]), "--previous", str(files["plan"]),
                            "--now", "40"])
    assert r.exit_code == 2
    assert "--now 40: past the horizon (periods 0..3)" in r.output


def test_scenario_change_past_the_horizon_is_refused(files: dict[str, Path]) -> None:
    sc = files["dir"] / "sc.yaml"
    sc.write_text(yaml.safe_dump({"scenarios": [{"name": "late", "changes": [
        {"kind": "pool_gpus", "cluster": "cn1", "accelerator": "H800", "add": 4,
         "from": 40}]}]}))
    r = runner.invoke(app, ["whatif", str(files["mine"]), str(sc), "--workers", "1"])
    assert r.exit_code == 2, r.output
    assert "scenarios[0].changes[0].from: period 40 is past the horizon" in r.output


def test_greedy_is_offered_and_its_bound_explained() -> None:
    r = runner.invoke(app, ["solve", "--help"], terminal_width=200)
    assert "greedy" in r.output and "trivial" in r.output


# -- the status rule: optimal only for a proven gap of 0 ---------------------------------------
class _Stub:
    """A backend that returns the greedy plan with a bound ``factor`` above its objective and
    reports a progress bound far above the trivial bound."""

    name = "stub"
    capabilities = Capabilities(proves_bound=True, takes_hint=False, stops_on_request=False,
                                deterministic=True)

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def available(self) -> bool:
        return True

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: Any = None, *, stop: Any = None) -> BackendResult:
        from gpualloc.optimizer.backends.greedy import greedy_values

        values = greedy_values(model)
        obj = model.objective_value(values)
        if progress is not None:
            progress(Progress(obj, 1e9, 0.0))
            progress(Progress(obj, None, 0.1))
        return BackendResult("feasible", values, obj * self.factor)


def _instance() -> Instance:
    return Instance.model_validate(copy.deepcopy(INSTANCE))


def test_a_plan_stopped_by_the_gap_tolerance_is_feasible_not_optimal() -> None:
    inst = _instance()
    plan = optimizer.solve(inst, _Stub(1.028), gap_tolerance=0.05)
    assert plan.gap is not None and 0.02 < plan.gap < 0.05
    assert plan.status == SolveStatus.FEASIBLE
    assert plan.summary["stopped"] == "stopped at gap ≤ 5%"
    check_plan(inst, plan, gap_tolerance=0.05)
    exact = optimizer.solve(inst, _Stub(1.0), gap_tolerance=0.05)
    assert exact.status == SolveStatus.OPTIMAL and "stopped" not in exact.summary


def test_progress_bounds_are_the_tightest_known() -> None:
    inst = _instance()
    seen: list[Progress] = []
    plan = optimizer.solve(inst, _Stub(1.028), progress=seen.append)
    trivial = 17.0  # a (10) and b (7), each at its best placement
    assert [p.bound for p in seen] == [trivial, trivial]
    assert plan.bound is not None and plan.bound <= trivial


def test_cli_shows_the_gap_stop(tmp_path: Path) -> None:
    # A real solve: with --gap 0.99 CP-SAT may stop at once; whatever it proves, the status
    # says optimal only for a zero gap.
    path = Path(__file__).resolve().parents[1] / "instances" / "portfolio.yaml"
    out = tmp_path / "p.json"
    r = runner.invoke(app, ["solve", str(path), "--gap", "0.5", "--quiet", "--out", str(out),
                            "--time-limit", "20"])
    assert r.exit_code == 0, r.output
    plan = json.loads(out.read_text())
    assert (plan["status"] == "optimal") == (plan["gap"] <= 1e-6)
    if plan["status"] == "feasible":
        assert "stopped at gap ≤ 50%" in r.output
    check_plan(load_instance(path), load_plan(out), gap_tolerance=0.5)


def test_solve_summarises_ineligible_placements(tmp_path: Path) -> None:
    data = copy.deepcopy(INSTANCE)
    data["startups"] = [{"id": "alpha", "restricted": ["3A090.b"]}]  # H800 under jan2026
    data["clusters"][0]["pools"].append({"accelerator": "L20", "gpus": 8,
                                         "price_per_gpu_hour": 1.0})
    data["jobs"] = [{"id": f"j{k}", "startup": "alpha", "value": 1, "options": [
        {"accelerator": "H800", "gpus": 1, "periods": 1},
        {"accelerator": "L20", "gpus": 1, "periods": 1}]} for k in range(8)]
    path = tmp_path / "barred.yaml"
    path.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["solve", str(path)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "8 option placement(s) removed as ineligible (--verbose lists them):" in r.output
    assert "8 x start-up alpha may not use 3A090.b (H800): j0, j1, j2, j3, j4 and 3 more" \
        in r.output
    assert "j7 option 0 on cn1" not in r.output
    r = runner.invoke(app, ["solve", str(path), "--verbose"], terminal_width=200)
    assert sum("option 0 on cn1: start-up alpha" in line for line in r.output.splitlines()) == 8


def test_import_jobs_says_that_yaml_comments_are_dropped(tmp_path: Path) -> None:
    inst = tmp_path / "mine.yaml"
    inst.write_text("# the fleet, annotated\n" + yaml.safe_dump(INSTANCE))
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("id,startup,accelerator,gpus,periods\nnew,alpha,H800,1,1\n")
    out = tmp_path / "new.yaml"
    r = runner.invoke(app, ["import-jobs", str(inst), str(jobs), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "comments of" in r.output and "are not kept" in r.output
    assert len(load_instance(out).jobs) == 3
