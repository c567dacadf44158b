"""CLI: ``whatif`` (scenarios and sweeps), ``marginal``, ``credits`` and ``caps``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gpualloc.cli import app
from gpualloc.models import load_instance, load_plan
from gpualloc.models.validator import validate

INSTANCE: dict[str, Any] = {
    "name": "cli-whatif",
    "horizon": {"periods": 4, "period_hours": 1},
    "clusters": [
        {"id": "hz-1", "region": "cn-east", "country": "CN", "pools": [
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 1.0},
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0}]},
        {"id": "sg-1", "region": "sg", "country": "SG", "pools": [
            {"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 3.0}]},
    ],
    "startups": [{"id": "moonshot", "credits": 200}, {"id": "zhipu", "credits": 100}],
    "jobs": [
        {"id": "m1", "startup": "moonshot", "value": 10,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2},
                     {"accelerator": "H20", "gpus": 16, "periods": 3, "value": 8}]},
        {"id": "m2", "startup": "moonshot", "value": 6, "after": ["m1"],
         "options": [{"accelerator": "H20", "gpus": 8, "periods": 2}]},
        {"id": "z1", "startup": "zhipu", "value": 5,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2}]},
        {"id": "z2", "startup": "zhipu", "value": 4,
         "options": [{"accelerator": "H100", "gpus": 8, "periods": 2}]},
    ],
    "caps": [{"id": "restricted-cn", "metric": "tpp", "limit": 8 * 15832,
              "countries": ["CN"], "export_classes": ["3A090.a"]}],
}
SCENARIOS = {"scenarios": [
    {"name": "cap-half", "changes": [{"kind": "cap", "id": "restricted-cn", "scale": 0.5}]},
    {"name": "more-h20", "changes": [{"kind": "pool_gpus", "cluster": "hz-1",
                                      "accelerator": "H20", "add": 16, "from": 1}]},
    {"name": "drop-m1", "changes": [{"kind": "remove_jobs", "ids": ["m1"]}]},
]}

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("whatif")
    inst, sc = root / "inst.yaml", root / "sc.yaml"
    inst.write_text(yaml.safe_dump(INSTANCE), encoding="utf-8")
    sc.write_text(yaml.safe_dump(SCENARIOS), encoding="utf-8")
    return {"root": root, "instance": inst, "scenarios": sc}


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_whatif_study(files: dict[str, Path]) -> None:
    out_csv, out_png = files["root"] / "study.csv", files["root"] / "study.png"
    r = invoke("whatif", files["instance"], files["scenarios"], "--workers", 1,
               "--time-limit", 20, "--csv", out_csv, "--plot", out_png)
    assert r.exit_code == 0, r.output
    for name in ("base", "cap-half", "more-h20", "drop-m1", "restricted-cn", "moonshot"):
        assert name in r.stdout
    assert "m2 removed too" in r.stdout
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["scenario"] for row in rows] == ["base", "cap-half", "more-h20", "drop-m1"]
    assert all(row["status"] == "optimal" for row in rows)
    assert float(rows[1]["delta"]) < 0  # halving the cap costs value
    assert out_png.read_bytes()[:4] == b"\x89PNG"


def test_whatif_sweep(files: dict[str, Path]) -> None:
    out_csv = files["root"] / "sweep.csv"
    r = invoke("whatif", files["instance"], "--sweep", "pool:hz-1/H20=+0..+16:3",
               "--time-limit", 20, "--csv", out_csv, "--plot", files["root"] / "sweep.png")
    assert r.exit_code == 0, r.output
    assert "Value curve" in r.stdout and "+16" in r.stdout
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(row["x"]) for row in rows] == [0, 8, 16]
    objectives = [float(row["objective"]) for row in rows]
    assert objectives == sorted(objectives)


def test_whatif_bad_input(files: dict[str, Path]) -> None:
    bad = files["root"] / "bad.yaml"
    bad.write_text("scenarios:\n  - name: x\n    changes: [{kind: cap, id: nope, scale: 2}]\n"
                   "  - name: y\n    changes: [{kind: credits, startup: all, scale: -1}]\n")
    r = invoke("whatif", files["instance"], bad, "--time-limit", 5)
    assert r.exit_code == 2
    assert "scenarios[0].changes[0].id: unknown cap 'nope'" in r.output
    assert "scenarios[1].changes[0].scale" in r.output
    assert "Traceback" not in r.output
    r = invoke("whatif", files["instance"], "--sweep", "cap:restricted-cn=0.5x..2:3")
    assert r.exit_code == 2 and "--sweep" in r.output
    r = invoke("whatif", files["instance"], "--sweep", "cap:nope=0.5x..2x:3")
    assert r.exit_code == 2 and "--sweep: unknown cap 'nope'" in r.output
    r = invoke("whatif", files["instance"])
    assert r.exit_code == 2
    r = invoke("whatif", files["instance"], files["scenarios"], "--backend", "nope")
    assert r.exit_code == 2 and "unknown backend" in r.output
    r = invoke("whatif", files["instance"], files["scenarios"], "--workers", 0)
    assert r.exit_code == 2
    r = invoke("whatif", files["instance"], files["root"] / "missing.yaml")
    assert r.exit_code == 2


def test_marginal(files: dict[str, Path]) -> None:
    out_csv = files["root"] / "marginal.csv"
    r = invoke("marginal", files["instance"], "--time-limit", 20, "--csv", out_csv)
    assert r.exit_code == 0, r.output
    for text in ("Pools", "Caps", "Credits", "LP dual", "hz-1/H20 [0-1]", "restricted-cn",
                 "moonshot", "GPU-period", "TPP"):
        assert text in r.stdout
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["kind"] for row in rows} == {"pool", "cap", "credits"}
    assert all(float(row["gain"]) >= 0 for row in rows)
    assert invoke("marginal", files["instance"], "--delta", -1).exit_code == 2
    assert invoke("marginal", files["root"] / "missing.yaml").exit_code == 2


def test_credits(files: dict[str, Path]) -> None:
    r = invoke("credits", files["instance"], "--time-limit", 20)
    assert r.exit_code == 0, r.output
    assert "honourable" in r.stdout and "moonshot" in r.stdout and "zhipu" in r.stdout
    assert "the most the fleet can honour" in r.stdout
    assert invoke("credits", files["instance"], "--time-limit", 0).exit_code == 2


def test_caps(files: dict[str, Path]) -> None:
    r = invoke("caps", files["instance"], "--time-limit", 20)
    assert r.exit_code == 0, r.output
    assert "restricted-cn" in r.stdout and "binding" in r.stdout and "looser adds" in r.stdout
    plan = files["root"] / "plan.json"
    r = invoke("solve", files["instance"], "--out", plan, "--quiet", "--time-limit", 20)
    assert r.exit_code == 0, r.output
    assert validate(load_instance(files["instance"]), load_plan(plan)) == []
    r = invoke("caps", files["instance"], plan, "--time-limit", 20, "--binding-only")
    assert r.exit_code == 0, r.output
    assert "restricted-cn" in r.stdout
    broken = files["root"] / "broken.json"
    broken.write_text("{not json")
    assert invoke("caps", files["instance"], broken).exit_code == 2
