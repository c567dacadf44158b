"""CLI: ``solve --report``, ``report``, ``export`` and ``import-jobs`` through Typer's runner."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gpualloc.cli import app
from gpualloc.models import Plan, load_instance, load_plan
from gpualloc.models.validator import validate

INSTANCE: dict[str, Any] = {
    "name": "cli",
    "horizon": {"periods": 4, "period_hours": 10},
    "clusters": [{"id": "cn1", "region": "east", "country": "CN", "pools": [
        {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0},
        {"accelerator": "H20", "gpus": 8, "price_per_gpu_hour": 0.5}]}],
    "startups": [{"id": "alpha", "credits": 1000}, {"id": "beta"}],
    "jobs": [
        {"id": "a1", "startup": "alpha", "value": 10,
         "options": [{"accelerator": "H800", "gpus": 4, "periods": 2}]},
        {"id": "b1", "startup": "beta", "value": 4,
         "options": [{"accelerator": "H20", "gpus": 8, "periods": 2}]},
        {"id": "big", "startup": "beta", "value": 9,
         "options": [{"accelerator": "H800", "gpus": 32, "periods": 1}]},
    ],
}
EXTERNAL = ("<link", "@import", "<iframe", "<object", "<embed", "<script src")

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The instance, and a plan and report written by ``solve --out --report``."""
    root = tmp_path_factory.mktemp("cli")
    inst = root / "cli.yaml"
    inst.write_text(yaml.safe_dump(INSTANCE), encoding="utf-8")
    plan, page = root / "plan.json", root / "solve.html"
    result = runner.invoke(app, ["solve", str(inst), "--out", str(plan), "--report", str(page),
                                 "--quiet", "--time-limit", "30"])
    assert result.exit_code == 0, result.output
    return {"root": root, "instance": inst, "plan": plan, "page": page}


def test_solve_writes_plan_and_report(files: dict[str, Path]) -> None:
    inst, plan = load_instance(files["instance"]), load_plan(files["plan"])
    assert validate(inst, plan) == []
    assert {a.job for a in plan.assignments} == {"a1", "b1"}
    page = files["page"].read_text(encoding="utf-8")
    assert all(needle not in page for needle in EXTERNAL)
    images = re.findall(r'<img[^>]*src="data:image/png;base64,', page)
    assert len(images) == 2  # spend, value (no caps)
    assert 'id="gantt"' in page and 'id="utilization"' in page  # interactive, plotly inline
    assert "big" in page and "no pool that can run its options has enough GPUs" in page


def test_solve_report_as_markdown(files: dict[str, Path]) -> None:
    md = files["root"] / "solve.md"
    result = runner.invoke(app, ["solve", str(files["instance"]), "--report", str(md),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert md.read_text(encoding="utf-8").startswith("# Plan report: cli")


def test_report_command_writes_html_pngs_and_markdown(files: dict[str, Path]) -> None:
    root = files["root"]
    result = runner.invoke(app, ["report", str(files["instance"]), str(files["plan"]),
                                 "--html", str(root / "r.html"), "--png", str(root / "png"),
                                 "--md-out", str(root / "r.md")])
    assert result.exit_code == 0, result.output
    page = (root / "r.html").read_text(encoding="utf-8")
    assert all(needle not in page for needle in EXTERNAL)
    pngs = sorted(p.name for p in (root / "png").iterdir())
    assert pngs == ["gantt-cn1-H20.png", "gantt-cn1-H800.png", "spend.png",
                    "utilization.png", "value.png"]
    assert "## Start-ups" in (root / "r.md").read_text(encoding="utf-8")


def test_report_md_prints_markdown_only(files: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", str(files["instance"]), str(files["plan"]), "--md"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Plan report: cli\n")
    assert "| big | beta |" in result.stdout
    assert list(tmp_path.iterdir()) == []  # --md alone writes no file


def test_report_defaults_to_report_html(files: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = Plan(instance="cli", status="optimal", objective=0.0, bound=0.0, gap=0.0,
                 unscheduled=("a1", "b1", "big"))
    assert validate(load_instance(files["instance"]), empty) == []
    plan = tmp_path / "empty.json"
    plan.write_text(empty.model_dump_json(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", str(files["instance"]), str(plan)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Pools with no assignments: cn1/H800, cn1/H20." in page


def test_report_bad_input(files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"instance": "cli", "status": "great"}', encoding="utf-8")
    result = runner.invoke(app, ["report", str(files["instance"]), str(bad)])
    assert result.exit_code == 2
    assert "status" in result.stderr
    result = runner.invoke(app, ["report", str(tmp_path / "none.yaml"), str(files["plan"])])
    assert result.exit_code == 2


def test_export_csv(files: dict[str, Path]) -> None:
    plan = load_plan(files["plan"])
    out = files["root"] / "out.csv"
    result = runner.invoke(app, ["export", str(files["plan"]), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["startup"] for r in rows] == [a.startup for a in plan.assignments]
    assert all(r["startup"] for r in rows) and all(r["periods"] for r in rows)
    assert [(r["job"], r["cluster"], r["accelerator"], int(r["gpus"]), int(r["start"]),
             int(r["end"]), float(r["cost"]), float(r["value"])) for r in rows] == [
        (a.job, a.cluster, a.accelerator, a.gpus, a.start, a.end, a.cost, a.value)
        for a in plan.assignments]
    printed = runner.invoke(app, ["export", str(files["plan"])])
    assert printed.exit_code == 0
    assert list(csv.DictReader(io.StringIO(printed.stdout))) == rows


def test_import_jobs(files: dict[str, Path], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("id,startup,value,after,accelerator,gpus,periods,option_value\n"
                    "c1,alpha,5,a1,H20,2,1,\n"
                    "c1,,,,H800,1,1,6\n", encoding="utf-8")
    out = tmp_path / "new.yaml"
    result = runner.invoke(app, ["import-jobs", str(files["instance"]), str(jobs),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 job(s) with 2 option(s) added" in result.stdout
    new = load_instance(out)
    assert [j.id for j in new.jobs] == ["a1", "b1", "big", "c1"]
    assert new.job_by_id["c1"].after == ("a1",)
    assert [o.value for o in new.job_by_id["c1"].options] == [None, 6.0]


def test_import_jobs_errors(files: dict[str, Path], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("id,startup,accelerator,gpus,periods\n"
                    "c1,alpha,H20,2,1\n"
                    "c2,alpha,H20,x,1\n"
                    "c3,alpha,H999,1,1\n", encoding="utf-8")
    out = tmp_path / "new.yaml"
    result = runner.invoke(app, ["import-jobs", str(files["instance"]), str(jobs),
                                 "--out", str(out)])
    assert result.exit_code == 2
    assert "jobs.csv row 3, column gpus: expected a positive integer, got 'x'" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
    jobs.write_text("id,startup,accelerator,gpus,periods\nc3,alpha,H999,1,1\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["import-jobs", str(files["instance"]), str(jobs),
                                 "--out", str(out)])
    assert result.exit_code == 2
    assert "jobs.csv row 2, column accelerator: unknown accelerator 'H999'" in result.stderr
    result = runner.invoke(app, ["import-jobs", str(files["instance"]), str(jobs)])
    assert result.exit_code == 2  # --out is required
