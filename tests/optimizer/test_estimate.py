"""The model-size estimate (before building) and the memory limit, in the library and the CLI."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpualloc import models, optimizer
from gpualloc.cli import app
from gpualloc.models import Objective
from gpualloc.optimizer.model import estimate as est
from gpualloc.sources.generate import generate, tier_instance

ROOT = Path(__file__).resolve().parents[2]
PORTFOLIO = ROOT / "instances" / "portfolio.yaml"


def _instances() -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            models.load_instance(PORTFOLIO),  # caps, eligibility, dependencies
            generate(clusters=4, startups=5, jobs=60, periods=12, seed=3),
            generate(clusters=3, startups=4, jobs=20, periods=10, seed=5).model_copy(
                update={"objective": Objective(cost_weight=0.5)}),
            tier_instance("medium"),
            # a long horizon: 5 edges' rule-5 rows thinned (precedence.PRECEDENCE_FULL_TERMS)
            generate(clusters=3, startups=4, jobs=30, periods=120, seed=7, windows="wide"),
        ]


@pytest.mark.parametrize("k", range(5))
def test_placements_are_exact_and_nonzeros_close(k: int) -> None:
    instance = _instances()[k]
    found = optimizer.estimate(instance)
    size = optimizer.build(instance, presolve=False).size()  # before the presolve
    assert found.placements == size["variables"]
    assert 0.8 * size["nonzeros"] <= found.nonzeros <= 1.25 * size["nonzeros"], (found, size)
    assert found.bytes == (est.BASE_BYTES + est.BYTES_PER_PLACEMENT * found.placements
                           + est.BYTES_PER_NONZERO * found.nonzeros)


def test_check_memory_refuses_over_the_limit() -> None:
    instance = _instances()[1]
    found = optimizer.estimate(instance)
    assert optimizer.check_memory(instance, None) is None  # no limit, nothing estimated
    assert optimizer.check_memory(instance, found.bytes) == found
    with pytest.raises(optimizer.ModelTooLarge) as info:
        optimizer.check_memory(instance, found.bytes - 1)
    assert info.value.estimate == found and info.value.limit == found.bytes - 1
    assert f"{found.placements:,} placements" in str(info.value)
    assert "over the memory limit of" in str(info.value)


def test_solve_refuses_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    solve_mod = importlib.import_module("gpualloc.optimizer.solve")

    def no_build(*args: Any) -> None:
        raise AssertionError("built a model that does not fit")

    monkeypatch.setattr(solve_mod, "build", no_build)
    with pytest.raises(optimizer.ModelTooLarge):
        optimizer.solve(_instances()[1], "greedy", max_memory=2**20)


def test_solve_within_the_limit_is_unchanged() -> None:
    instance = _instances()[1]
    limited = optimizer.solve(instance, "greedy", max_memory=2**40)
    assert limited.objective == optimizer.solve(instance, "greedy").objective


def test_the_default_limit_reads_mem_available(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   10000000 kB\n")
    assert est.available_memory(str(meminfo)) == 10_000_000 * 1024
    assert est.available_memory(str(tmp_path / "none")) is None
    monkeypatch.setattr(est, "available_memory", lambda: 10_000_000 * 1024)
    assert est.default_memory_limit() == int(0.6 * 10_000_000 * 1024)
    monkeypatch.setattr(est, "available_memory", lambda: None)
    assert est.default_memory_limit() is None


@pytest.mark.parametrize("text, expected", [("8G", 8 * 2**30), ("512M", 512 * 2**20),
                                            ("1.5GiB", int(1.5 * 2**30)), ("2000", 2000),
                                            ("64kb", 64 * 2**10)])
def test_memory_sizes(text: str, expected: int) -> None:
    assert est.memory_from_text(text) == expected


@pytest.mark.parametrize("text", ["", "G", "-1G", "0", "lots", "infG", "nan"])
def test_bad_memory_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        est.memory_from_text(text)


def test_cli_refuses_in_one_line_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["solve", str(PORTFOLIO), "--backend", "greedy",
                                      "--max-memory", "1M"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: the model would need about ")
    assert "placements" in lines[0] and "over the memory limit of 1.0 MiB" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("value, code", [("none", 0), ("64G", 0), ("auto", 0), ("junk", 2)])
def test_cli_memory_values(value: str, code: int) -> None:
    result = CliRunner().invoke(app, ["solve", str(PORTFOLIO), "--backend", "greedy",
                                      "--quiet", "--max-memory", value])
    assert result.exit_code == code, result.stderr
    if code == 2:
        assert "--max-memory: 'junk' is not a size" in result.stderr
