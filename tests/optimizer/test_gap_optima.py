"""OR-Library GAP benchmarks gap1..gap4: every exact backend proves the published optimum.

Optima come from ``shared/benchmarks/gap/optima.csv``, never from this file. Also a quick run
of the benchmark runner (fresh process per run) on a tiny hand-made GAP file.
"""

from __future__ import annotations

import csv
import math
from functools import cache
from pathlib import Path

import pytest

from gpualloc import optimizer
from gpualloc.analysis.bench import (
    BenchRow,
    bench_targets,
    known_optimum,
    rows_to_csv,
    run_bench,
    write_csv,
)
from gpualloc.models import Instance
from gpualloc.models.validator import validate
from gpualloc.optimizer import backends as backend_registry
from gpualloc.sources.orlib_gap import GapProblem, read_gap
from tests.conftest import HEURISTIC_BACKENDS

GAP_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "gap"
FILES = ("gap1", "gap2", "gap3", "gap4")
HEURISTICS = HEURISTIC_BACKENDS  # backends without a proven bound: valid plans, no optimality claim


def _optima() -> dict[tuple[str, int], float]:
    path = GAP_DIR / "optima.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {(r["file"], int(r["problem"])): float(r["optimum"]) for r in csv.DictReader(fh)
                if r["file"] in FILES and r["sense"] == "max"}


OPTIMA = _optima()
CASES = sorted(OPTIMA, key=lambda k: (FILES.index(k[0]), k[1]))


@cache
def _problem(file: str, index: int) -> tuple[GapProblem, Instance]:
    problem = read_gap(GAP_DIR / f"{file}.txt")[index - 1]
    assert problem.index == index
    return problem, problem.to_instance()


def test_optima_table_covers_gap1_to_gap4() -> None:
    if not GAP_DIR.exists():
        pytest.skip(f"benchmark data not found: {GAP_DIR}")
    assert len(CASES) == 20


@pytest.mark.parametrize("backend", optimizer.backend_names())
@pytest.mark.parametrize(("file", "index"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_gap_optimum(backend: str, file: str, index: int) -> None:
    if backend not in optimizer.available_backends():
        pytest.skip(f"backend {backend} not installed")
    problem, inst = _problem(file, index)
    optimum = OPTIMA[(file, index)]
    plan = optimizer.solve(inst, backend, time_limit=60, seed=0, workers=1)
    if backend in HEURISTICS and not plan.is_feasible:
        assert plan.status == "unknown"  # a heuristic may miss a tight GAP's feasible plans
        return
    assert validate(inst, plan) == []
    assert len(plan.assignments) == problem.jobs
    if backend in HEURISTICS:
        assert problem.objective_from(plan.objective) <= optimum + 1e-6
        return
    assert plan.status == "optimal", (plan.status, plan.objective, plan.bound)
    assert problem.objective_from(plan.objective) == pytest.approx(optimum, abs=1e-6)
    assert problem.objective_from(plan.bound) == pytest.approx(optimum, abs=1e-6)


# -- the benchmark runner --------------------------------------------------------------------
TINY = "1\n2 3\n6 4 5\n3 7 2\n2 3 9\n4 3 1\n5 6\n"  # max 15, min 9 (see tests/models/test_gap)


class _Missing:
    """A registered backend whose solver is not installed."""

    name = "missing"

    def available(self) -> bool:
        return False


def test_known_optimum_reads_optima_csv(tmp_path: Path) -> None:
    (tmp_path / "tiny.txt").write_text(TINY)
    (max_problem,) = read_gap(tmp_path / "tiny.txt")
    (min_problem,) = read_gap(tmp_path / "tiny.txt", minimize=True)
    assert known_optimum(max_problem) is None  # no optima.csv yet
    (tmp_path / "optima.csv").write_text(
        "file,problem,name,agents,jobs,sense,optimum\n"
        "tiny,1,t-1,2,3,max,15\n"
        "tiny,1,t-1,2,3,min,9\n"
        "tiny,2,t-2,2,3,max,not-a-number\n"
        "other,1,o-1,2,3,max,99\n")
    assert known_optimum(max_problem) == 15
    assert known_optimum(min_problem) == 9
    if GAP_DIR.exists():
        assert known_optimum(_problem("gap1", 1)[0]) == OPTIMA[("gap1", 1)]


def test_bench_targets(tmp_path: Path) -> None:
    from gpualloc.models import save_instance

    gap = tmp_path / "tiny.txt"
    gap.write_text(TINY)
    (problem,) = read_gap(gap)
    yaml_path = tmp_path / "one.yaml"
    save_instance(problem.to_instance(), yaml_path)
    targets = bench_targets([str(yaml_path), str(gap)], minimize=True)
    assert [(label, p is None) for label, _, p in targets] == [("tiny-1", True),
                                                               ("tiny-1", False)]
    assert targets[1][2] is not None and targets[1][2].minimize


def test_run_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gap = tmp_path / "tiny.txt"
    gap.write_text(TINY)
    (tmp_path / "optima.csv").write_text("file,problem,name,agents,jobs,sense,optimum\n"
                                         "tiny,1,t-1,2,3,min,9\n")
    monkeypatch.setitem(backend_registry._REGISTRY, "missing", _Missing)
    seen: list[BenchRow] = []
    targets = bench_targets([str(gap)], minimize=True)
    rows = run_bench(targets, ["cpsat", "missing"], time_limit=20, runs=2, on_row=seen.append)
    assert rows == seen
    solved, missing = rows
    assert (solved.instance, solved.backend, solved.status) == ("tiny-1", "cpsat", "optimal")
    assert solved.runs == 2 and solved.error is None
    # GAP sense: the minimum cost and a lower bound equal to it.
    assert (solved.objective, solved.bound, solved.gap) == (9.0, 9.0, 0.0)
    assert solved.known_optimum == 9.0
    assert solved.median_seconds >= 0 and math.isfinite(solved.median_seconds)
    assert solved.peak_mib is None or solved.peak_mib > 0
    assert (missing.backend, missing.status, missing.runs) == ("missing", "unavailable", 0)
    assert missing.objective is None and missing.known_optimum == 9.0

    out = tmp_path / "out" / "bench.csv"
    write_csv(rows, out)
    assert out.read_text() == rows_to_csv(rows)
    with open(out, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["backend"] for r in table] == ["cpsat", "missing"]
    assert table[0]["objective"] == "9.0" and table[1]["objective"] == ""
    assert list(table[0]) == [f for f in BenchRow.__dataclass_fields__]


def test_run_bench_rejects_unknown_backend() -> None:
    with pytest.raises(optimizer.BackendUnavailable, match="unknown backend"):
        run_bench([], ["no-such-solver"], time_limit=1)
