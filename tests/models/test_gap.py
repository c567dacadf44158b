"""The OR-Library GAP reader and its mapping to gpualloc instances."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import pytest

from gpualloc import optimizer
from gpualloc.models import InstanceError, InstanceWarning, load_instance, save_instance
from gpualloc.models.checks import semantic_issues
from gpualloc.models.validator import validate
from gpualloc.sources.orlib_gap import GapProblem, parse_gap, read_gap
from tests.conftest import HEURISTIC_BACKENDS

HEURISTICS = HEURISTIC_BACKENDS  # backends without a proven bound: no optimality claim expected
GAP_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "gap"

# 2 agents x 3 jobs. Job 3 on agent 1 needs 9 > b_1 = 5 GPUs: that option can never fit.
# Feasible assignments (job1, job2; job3 is forced to agent 2):
#   A1,A1: load A1 5, A2 1 -> profit 6+4+2 = 12
#   A1,A2: load A1 2, A2 4 -> profit 6+7+2 = 15   <- maximum
#   A2,A1: load A1 3, A2 5 -> profit 3+4+2 = 9    <- minimum (as costs)
#   A2,A2: load A2 8 > 6   -> infeasible
TINY = """  1
2\t3

 6 4 5
 3 7 2
2 3
9 4 3 1

    5
  6
"""
TINY_MAX, TINY_MIN = 15, 9
TINY_MAX_PLAN = {"job-1": "agent-1", "job-2": "agent-2", "job-3": "agent-2"}
TINY_MIN_PLAN = {"job-1": "agent-2", "job-2": "agent-1", "job-3": "agent-2"}


def _tiny(tmp_path: Path, minimize: bool = False) -> GapProblem:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY)
    (problem,) = read_gap(path, minimize=minimize)
    return problem


def _brute_force(p: GapProblem) -> float:
    """The GAP optimum by enumeration (tiny problems only)."""
    best = None
    for choice in itertools.product(range(p.agents), repeat=p.jobs):
        load = [0] * p.agents
        for j, i in enumerate(choice):
            load[i] += p.a[i][j]
        if any(load[i] > p.b[i] for i in range(p.agents)):
            continue
        value = sum(p.c[i][j] for j, i in enumerate(choice))
        if best is None or (value < best if p.minimize else value > best):
            best = value
    assert best is not None
    return best


# -- parsing ------------------------------------------------------------------------------------
def test_tiny_parse_with_arbitrary_whitespace(tmp_path: Path) -> None:
    p = _tiny(tmp_path)
    assert (p.name, p.agents, p.jobs, p.index, p.minimize) == ("tiny-1", 2, 3, 1, False)
    assert p.c == ((6, 4, 5), (3, 7, 2))
    assert p.a == ((2, 3, 9), (4, 3, 1))
    assert p.b == (5, 6)
    assert p.source == str(tmp_path / "tiny.txt")
    # The same numbers on one line parse the same.
    (flat,) = parse_gap(" ".join(TINY.split()), source="tiny.txt")
    assert (flat.c, flat.a, flat.b) == (p.c, p.a, p.b)


def test_tiny_hand_optimum_agrees_with_enumeration(tmp_path: Path) -> None:
    assert _brute_force(_tiny(tmp_path)) == TINY_MAX
    assert _brute_force(_tiny(tmp_path, minimize=True)) == TINY_MIN


@pytest.mark.parametrize("minimize", [False, True], ids=["max", "min"])
def test_tiny_solves_to_hand_optimum(tmp_path: Path, minimize: bool) -> None:
    p = _tiny(tmp_path, minimize)
    inst = p.to_instance()
    expected, where = (TINY_MIN, TINY_MIN_PLAN) if minimize else (TINY_MAX, TINY_MAX_PLAN)
    for backend in optimizer.available_backends():
        plan = optimizer.solve(inst, backend, time_limit=30)
        assert validate(inst, plan) == [], backend
        if backend in HEURISTICS:  # proves nothing; must still be a valid plan
            assert plan.is_feasible, backend
            continue
        assert plan.status == "optimal", backend
        assert p.objective_from(plan.objective) == expected, backend
        assert p.objective_from(plan.bound) == expected, backend
        assert {a.job: a.cluster for a in plan.assignments} == where, backend


def test_mapping(tmp_path: Path) -> None:
    p = _tiny(tmp_path)
    inst = p.to_instance()
    assert inst.name == "tiny-1"
    assert inst.horizon.periods == 1
    assert [c.id for c in inst.clusters] == ["agent-1", "agent-2"]
    assert [(c.pools[0].accelerator, c.pools[0].gpus, c.pools[0].price_per_gpu_hour)
            for c in inst.clusters] == [("A1", 5, 0.0), ("A2", 6, 0.0)]
    assert {inst.export_class(f"A{i}") for i in (1, 2)} == {"unrestricted"}
    assert [s.credits for s in inst.startups] == [None]
    assert [j.id for j in inst.jobs] == ["job-1", "job-2", "job-3"]
    job3 = inst.job_by_id["job-3"]
    assert job3.mandatory
    assert [(o.accelerator, o.gpus, o.periods, o.value) for o in job3.options] == [
        ("A1", 9, 1, 5.0), ("A2", 1, 1, 2.0)]
    # Minimisation: values K - c with K = max(c) + 1 = 8.
    pm = _tiny(tmp_path, minimize=True)
    assert pm.offset == 8
    assert [o.value for o in pm.to_instance().job_by_id["job-3"].options] == [3.0, 6.0]


def test_objective_from(tmp_path: Path) -> None:
    assert _tiny(tmp_path).objective_from(15.0) == 15.0
    pm = _tiny(tmp_path, minimize=True)
    assert pm.objective_from(15.0) == 3 * 8 - 15.0


def test_mapped_instance_has_no_warnings(tmp_path: Path) -> None:
    inst = _tiny(tmp_path).to_instance()
    assert semantic_issues(inst.model_dump(by_alias=True)) == []
    path = tmp_path / "tiny.yaml"
    save_instance(inst, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InstanceWarning)
        assert load_instance(path) == inst


def test_option_never_fitting_every_pool_is_infeasible_not_an_error(tmp_path: Path) -> None:
    (p,) = parse_gap("1  1 1  4  5  3")  # one job needs 5 GPUs, the only agent has 3
    plan = optimizer.solve(p.to_instance(), "cpsat", time_limit=10)
    assert plan.status == "infeasible"


def test_negative_costs_allowed_when_minimising() -> None:
    (p,) = parse_gap("1 2 2  -3 4  2 -1  1 1 1 1  2 2", minimize=True)
    assert p.offset == 5
    assert min(p.option_value(i, j) for i in range(2) for j in range(2)) == 1
    plan = optimizer.solve(p.to_instance(), "cpsat", time_limit=10)
    assert p.objective_from(plan.objective) == _brute_force(p) == -4


# -- the OR-Library files -------------------------------------------------------------------
@pytest.fixture(scope="module")
def gap1() -> list[GapProblem]:
    path = GAP_DIR / "gap1.txt"
    if not path.exists():
        pytest.skip(f"benchmark data not found: {path}")
    return read_gap(path)


def test_gap1_shapes(gap1: list[GapProblem]) -> None:
    assert [p.name for p in gap1] == [f"gap1-{k}" for k in range(1, 6)]
    assert [p.index for p in gap1] == [1, 2, 3, 4, 5]
    for p in gap1:
        assert (p.agents, p.jobs, p.minimize) == (5, 15, False)
        assert len(p.c) == len(p.a) == len(p.b) == 5
        assert all(len(row) == 15 for row in (*p.c, *p.a))
    first = gap1[0]
    assert first.c[0][:3] == (17, 21, 22)
    assert first.a[0][:3] == (8, 15, 14)
    assert first.b == (36, 34, 38, 27, 33)
    inst = first.to_instance()
    assert len(inst.clusters) == 5 and len(inst.jobs) == 15
    assert all(len(j.options) == 5 and j.mandatory for j in inst.jobs)


def test_all_shipped_files_parse() -> None:
    if not GAP_DIR.exists():
        pytest.skip(f"benchmark data not found: {GAP_DIR}")
    for path in sorted(GAP_DIR.glob("gap*.txt")):
        minimize = path.stem in ("gapa", "gapb", "gapc", "gapd")
        problems = read_gap(path, minimize=minimize)
        assert len(problems) in (5, 6), path.name
        for p in problems:
            assert len(p.c) == len(p.a) == len(p.b) == p.agents
            assert all(len(row) == p.jobs for row in (*p.c, *p.a))


# -- malformed files ------------------------------------------------------------------------
def _error(text: str | bytes, tmp_path: Path, minimize: bool = False) -> InstanceError:
    path = tmp_path / "bad.txt"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(InstanceError) as info:
        read_gap(path, minimize=minimize)
    assert info.value.source == str(path)
    return info.value


def test_non_integer_token_is_located(tmp_path: Path) -> None:
    err = _error("1\n1 2\n3 x\n1 1\n5\n", tmp_path)
    (issue,) = err.issues
    assert issue.location == "token 5"
    assert "expected an integer" in issue.message and "'x'" in issue.message
    assert "c[1][2]" in issue.message and "line 3" in issue.message
    assert str(issue).startswith("token 5: expected an integer")


def test_file_ending_early_names_the_problem(tmp_path: Path) -> None:
    (issue,) = _error("3\n1 1  4  2  3\n1 1  4  2  3\n", tmp_path).issues
    assert str(issue).startswith("problem 3: file ends early")
    (issue,) = _error("1\n2 2\n1 2 3 4\n1 1", tmp_path).issues
    assert str(issue).startswith("problem 1: file ends early")


@pytest.mark.parametrize(("text", "location", "words"), [
    ("", "", "empty"),
    ("   \n\n", "", "empty"),
    ("0", "token 1", "number of problems"),
    ("1\n0 3\n", "token 2", "agents must be positive"),
    ("1\n2 -1\n", "token 3", "jobs must be positive"),
    ("1\n1 2\n3 4\n1 0\n5\n", "token 7", "a[1][2] = 0"),
    ("1\n1 2\n-3 4\n1 1\n5\n", "token 4", "c[1][1] = -3"),
    ("1\n1 2\n3 4\n1 1\n-5\n", "token 8", "b[1] = -5"),
    ("1\n1 1\n3\n1\n5\n7\n", "token 7", "unexpected data"),
    ("1\n1 1\n3\n1.5\n5\n", "token 5", "expected an integer"),
])
def test_malformed(tmp_path: Path, text: str, location: str, words: str) -> None:
    err = _error(text, tmp_path)
    assert len(err.issues) == 1
    assert err.issues[0].location == location
    assert words in err.issues[0].message


def test_every_bad_value_reported_at_once(tmp_path: Path) -> None:
    err = _error("1\n1 2\n-1 -2\n0 1\n5\n", tmp_path)
    assert [i.location for i in err.issues] == ["token 4", "token 5", "token 6"]


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InstanceError, match="cannot read GAP file"):
        read_gap(tmp_path / "absent.txt")
    err = _error(b"1 1 1 \xff\xfe", tmp_path)
    assert "not UTF-8" in err.issues[0].message
