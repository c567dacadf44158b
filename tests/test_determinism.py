"""Determinism: the same instance, seed and one worker give the same plan, run after run.

For every backend, on a few generated instances that solve to optimality well within the time
limit (a search cut by a wall-clock limit may stop anywhere): two solves in this process, two
in fresh processes, and two ``gpualloc solve --seed S --workers 1`` runs must return identical
assignments (and status, objective and unscheduled jobs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpualloc import optimizer
from gpualloc.models import Instance, Plan, load_instance, save_instance
from gpualloc.sources.generate import generate
from tests.conftest import ALL_BACKENDS, HEURISTIC_BACKENDS, check_plan
from tests.strategies import random_instance

ROOT = Path(__file__).resolve().parents[1]
SEED = 7
TIME_LIMIT = 60.0


def instances() -> dict[str, Instance]:
    return {
        "random-11": random_instance(11, jobs=12, periods=6),
        "random-12": random_instance(12, jobs=15, periods=6, caps=3, clusters=3),
        "generated": generate(clusters=2, startups=3, jobs=20, periods=6, seed=5),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("determinism")
    out = {}
    for name, instance in instances().items():
        out[name] = folder / f"{name}.json"
        save_instance(instance, out[name])
    return out


def fingerprint(plan: Plan | dict[str, Any]) -> dict[str, Any]:
    """What must not change between runs (not the runtime)."""
    data = plan if isinstance(plan, dict) else plan.model_dump(mode="json")
    return {k: data[k] for k in ("status", "objective", "assignments", "unscheduled")}


def solve(instance: Instance, backend: str) -> Plan:
    plan = optimizer.solve(instance, backend, time_limit=TIME_LIMIT, seed=SEED, workers=1)
    check_plan(instance, plan)
    return plan


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_same_plan_twice_in_one_process(files: dict[str, Path], backend: str) -> None:
    for name, path in files.items():
        instance = load_instance(path)
        first, second = solve(instance, backend), solve(instance, backend)
        if backend not in HEURISTIC_BACKENDS:
            assert first.status.value == "optimal", f"{name}: pick an easier instance"
        assert fingerprint(first) == fingerprint(second), f"{backend} on {name}"


SCRIPT = f"""
import json, sys, warnings
warnings.simplefilter("ignore")
from gpualloc import optimizer
from gpualloc.models import load_instance
out = {{}}
for path in sys.argv[2:]:
    for backend in sys.argv[1].split(","):
        plan = optimizer.solve(load_instance(path), backend, time_limit={TIME_LIMIT!r},
                               seed={SEED!r}, workers=1)
        out[path + ":" + backend] = plan.model_dump(mode="json")
sys.stdout.write(json.dumps(out))
"""


def run_fresh(paths: list[Path]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(ALL_BACKENDS),
                             *map(str, paths)], capture_output=True, text=True, check=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            timeout=600)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_same_plan_in_fresh_processes(files: dict[str, Path]) -> None:
    paths = list(files.values())
    first, second = run_fresh(paths), run_fresh(paths)
    assert first.keys() == second.keys()
    for key in first:
        assert fingerprint(first[key]) == fingerprint(second[key]), key
        # and the same as in this process (where other solves ran before)
        path, backend = key.rsplit(":", 1)
        assert fingerprint(first[key]) == fingerprint(solve(load_instance(path), backend)), key


@pytest.mark.slow
def test_same_plan_from_the_cli(files: dict[str, Path], tmp_path: Path) -> None:
    """The CLI passes ``--seed`` and ``--workers`` through (every backend is covered above)."""
    path, backend = files["random-12"], "cpsat"
    plans = []
    for run in range(2):
        out = tmp_path / f"plan{run}.json"
        result = subprocess.run(
            [sys.executable, "-m", "gpualloc.cli", "solve", str(path), "--backend", backend,
             "--seed", str(SEED), "--workers", "1", "--time-limit", str(TIME_LIMIT),
             "--out", str(out), "--quiet"],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, result.stderr[-2000:]
        plans.append(json.loads(out.read_text(encoding="utf-8")))
    assert fingerprint(plans[0]) == fingerprint(plans[1])
    assert plans[0]["seed"] == SEED
