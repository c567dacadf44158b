"""``bench --peers``: the default plan against the interval model, HiGHS alone and greedy."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gpualloc.analysis.bench import PEERS, run_peers
from gpualloc.cli import app
from gpualloc.models import save_instance
from gpualloc.sources.generate import generate


def test_peers_run_each_peer_with_ratios_to_the_default() -> None:
    inst = generate(2, 2, 8, 4, seed=5)
    rows = run_peers([(inst.name, inst, None)], time_limit=5, workers=1)
    assert [p.row.backend for p in rows] == list(PEERS)
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
