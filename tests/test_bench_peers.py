"""``bench --peers``: the default plan against the interval model, HiGHS alone and greedy.

The solves run in this process here (``_run_once`` replaced): a spawned process per run is
``run_bench``'s machinery, tested with it, and costs seconds each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpualloc.analysis import bench
from gpualloc.analysis.bench import PEERS, run_peers
from gpualloc.cli import app
from gpualloc.models import Instance, save_instance
from gpualloc.models.validator import validate
from gpualloc.optimizer import solve
from gpualloc.sources.generate import generate


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def run_once(data: dict[str, Any], backend: str, time_limit: float, seed: int,
                 workers: int):
        instance = Instance.model_validate(data)
        plan = solve(instance, backend, time_limit=time_limit, seed=seed, workers=workers)
        assert validate(instance, plan) == []
        seen.append(backend)
        return plan, None, None

    monkeypatch.setattr(bench, "_run_once", run_once)
    return seen


def test_peers_run_each_peer_with_ratios_to_the_default(in_process: list[str]) -> None:
    inst = generate(2, 2, 8, 4, seed=5)
    rows = run_peers([(inst.name, inst, None)], time_limit=5, workers=1)
    assert [p.row.backend for p in rows] == list(PEERS) == in_process
    default = rows[0].row
    assert default.status == "optimal" and default.objective is not None
    for p in rows:
        assert p.row.status in ("optimal", "feasible"), p.row
        assert p.row.objective is not None
        # the default proves its optimum: no peer does better, and the ratio says so
        assert p.row.objective <= default.objective + 1e-6 * max(1.0, default.objective)
        assert p.ratio is not None and abs(p.ratio - default.objective / p.row.objective) < 1e-12
        assert p.ratio >= 1 - 1e-6


def test_cli_bench_peers_prints_the_table(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    save_instance(generate(2, 2, 6, 4, seed=6), path)
    result = CliRunner().invoke(app, ["bench", str(path), "--peers", "--time-limit", "5",
                                      "--workers", "1", "--csv", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    for word in ("default", "interval", "highs", "greedy", "default ÷ run"):
        assert word in result.output
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 1 + len(PEERS)
