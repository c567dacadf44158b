"""CLI: ``gpualloc explain`` and ``gpualloc solve --previous/--now/--stability``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from gpualloc.cli import app
from gpualloc.models import Assignment, Plan, SolveStatus, load_instance, load_plan, save_plan
from tests.conftest import check_plan

runner = CliRunner()


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def opt(gpus: int = 8, periods: int = 2) -> list[dict[str, Any]]:
    return [{"accelerator": "H800", "gpus": gpus, "periods": periods}]


def pool(gpus: int = 8) -> dict[str, Any]:
    return {"accelerator": "H800", "gpus": gpus, "price_per_gpu_hour": 0.0}


def instance(**kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "cli",
        "horizon": {"periods": 4, "period_hours": 1.0},
        "clusters": [{"id": "A", "region": "r", "country": "US", "pools": [pool()]},
                     {"id": "B", "region": "r", "country": "US", "pools": [pool()]}],
        "startups": [{"id": "s"}],
        "jobs": [{"id": "a1", "startup": "s", "value": 10, "options": opt()},
                 {"id": "a2", "startup": "s", "value": 10, "options": opt()},
                 {"id": "b1", "startup": "s", "value": 25, "options": opt(periods=4)}],
    }
    data.update(kw)
    return data


def previous(tmp_path: Path) -> Path:
    def run(job: str, cluster: str, start: int, periods: int, value: float) -> Assignment:
        return Assignment(job=job, cluster=cluster, accelerator="H800", gpus=8, start=start,
                          end=start + periods, cost=0.0, value=value)

    plan = Plan(instance="cli", status=SolveStatus.OPTIMAL, objective=45.0,
                assignments=(run("a1", "A", 0, 2, 10.0), run("a2", "A", 2, 2, 10.0),
                             run("b1", "B", 0, 4, 25.0)))
    path = tmp_path / "previous.json"
    save_plan(plan, path)
    return path


# -- explain -----------------------------------------------------------------------------------
def test_explain_infeasible(tmp_path: Path) -> None:
    jobs = [{"id": j, "startup": "s", "value": 10, "mandatory": True, "deadline": 2,
             "options": opt()} for j in ("x", "y", "z")]
    data = instance(jobs=jobs)
    del data["clusters"][1]
    path = write(tmp_path, "inf.yaml", data)
    result = runner.invoke(app, ["explain", str(path), "--time-limit", "10"])
    assert result.exit_code == 0, result.output
    # x, y and z need 24 GPUs in periods 0-1; A holds 8
    assert "infeasible" in result.stdout
    assert "pool A/H800: +16 GPUs in periods 0-1 (8 -> 24)" in result.stdout
    assert "check: the relaxed instance solves optimal" in result.stdout


def test_explain_feasible_with_plan_and_json(tmp_path: Path) -> None:
    data = instance(jobs=[*instance()["jobs"],
                          {"id": "late", "startup": "s", "value": 1, "options": opt()}])
    inst_path = write(tmp_path, "ok.yaml", data)
    plan_path = tmp_path / "plan.json"
    solved = runner.invoke(app, ["solve", str(inst_path), "--out", str(plan_path), "--quiet"])
    assert solved.exit_code == 0, solved.output
    assert load_plan(plan_path).unscheduled == ("late",)

    result = runner.invoke(app, ["explain", str(inst_path), str(plan_path)])
    assert result.exit_code == 0, result.output
    assert "late (displaces)" in result.stdout
    assert "blocking: pool" in result.stdout

    result = runner.invoke(app, ["explain", str(inst_path), str(plan_path), "--json",
                                 "--max-jobs", "0"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["feasible"] is True
    assert [(j["job"], j["reason"]) for j in data["jobs"]] == [("late", "not_evaluated")]


def test_explain_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    result = runner.invoke(app, ["explain", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output

    good = write(tmp_path, "ok.yaml", instance())
    missing = runner.invoke(app, ["explain", str(good), str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    for args in (["--max-jobs", "-1"], ["--time-limit", "0"], ["--backend", "nosuch"]):
        result = runner.invoke(app, ["explain", str(good), *args])
        assert result.exit_code == 2, args


# -- solve --previous --------------------------------------------------------------------------
def test_solve_replan_removed_pool(tmp_path: Path) -> None:
    data = instance()
    data["clusters"][1]["pools"] = []
    inst_path = write(tmp_path, "new.yaml", data)
    out_path = tmp_path / "replan.json"
    result = runner.invoke(app, ["solve", str(inst_path), "--previous", str(previous(tmp_path)),
                                 "--now", "0", "--stability", "100", "--out", str(out_path)])
    assert result.exit_code == 0, result.output
    assert "1 change(s) from the previous plan" in result.stdout
    assert "dropped  b1: B/H800 x8 periods 0-3 -> -" in result.stdout
    plan = load_plan(out_path)
    check_plan(load_instance(inst_path), plan)
    assert plan.objective == -80.0 and plan.objective_adjustment == -100.0
    assert [c["job"] for c in plan.summary["changes"]] == ["b1"]


def test_solve_replan_frozen_on_removed_pool(tmp_path: Path) -> None:
    data = instance()
    data["clusters"][1]["pools"] = []
    inst_path = write(tmp_path, "new.yaml", data)
    result = runner.invoke(app, ["solve", str(inst_path), "--previous", str(previous(tmp_path)),
                                 "--now", "1"])
    assert result.exit_code == 1
    assert "frozen assignment b1 on B/H800" in result.stdout


def test_solve_replan_bad_options(tmp_path: Path) -> None:
    inst_path = write(tmp_path, "ok.yaml", instance())
    prev = str(previous(tmp_path))
    bad_plan = tmp_path / "bad.json"
    bad_plan.write_text("{not json")
    for args in (["--now", "1"], ["--stability", "2"],
                 ["--previous", prev, "--now", "-1"],
                 ["--previous", prev, "--stability", "-1"],
                 ["--previous", str(bad_plan)],
                 ["--previous", str(tmp_path / "nope.json")]):
        result = runner.invoke(app, ["solve", str(inst_path), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
