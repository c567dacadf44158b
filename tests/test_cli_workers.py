"""``solve`` uses the machine by default: ``--workers`` defaults to the available cores and
``--backend auto`` picks the engine; ``--workers 0`` is a usage error."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gpualloc.cli import app
from gpualloc.models import load_plan, save_instance
from gpualloc.models.validator import validate
from gpualloc.optimizer import available_cores
from gpualloc.sources.generate import generate


def test_default_solve_uses_every_core_and_auto(tmp_path: Path) -> None:
    inst = generate(2, 2, 10, 6, seed=2)
    path, plan_path = tmp_path / "i.yaml", tmp_path / "plan.json"
    save_instance(inst, path)
    result = CliRunner().invoke(app, ["solve", str(path), "--time-limit", "20", "--quiet",
                                      "--out", str(plan_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(plan_path.read_text())
    assert data["parameters"]["workers"] == available_cores()
    assert data["backend"] == "cpsat"  # a small model: CP-SAT on the whole model
    assert validate(inst, load_plan(plan_path)) == []


def test_workers_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "i.yaml"
    save_instance(generate(2, 2, 4, 4, seed=2), path)
    result = CliRunner().invoke(app, ["solve", str(path), "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output
