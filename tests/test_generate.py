"""The synthetic instance generator, its fitted trace parameters, tiers and CLI command."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gpualloc import optimizer
from gpualloc.cli import app
from gpualloc.models import Instance, Plan, load_instance
from gpualloc.optimizer.model.formulation import build
from gpualloc.sources.generate import TIERS, generate, tier_instance, trace_params
from tests.conftest import check_plan

SMALL = dict(clusters=3, startups=4, jobs=30, periods=8)


@pytest.fixture(scope="module")
def small() -> Instance:
    return generate(**SMALL, seed=1)


@pytest.fixture(scope="module")
def medium() -> Instance:
    return tier_instance("medium")


# -- fitted parameters ---------------------------------------------------------------------
def test_trace_params_ship_in_the_package() -> None:
    path = resources.files("gpualloc.sources") / "data" / "trace_params.json"
    assert path.is_file()
    assert json.loads(path.read_text(encoding="utf-8")) == trace_params()


def test_trace_params_have_the_expected_keys() -> None:
    p = trace_params()
    philly, alibaba = p["philly"], p["alibaba_openb"]
    assert philly["jobs"] == 3034
    gangs = philly["gang_sizes"]
    assert gangs["buckets"] == sorted(gangs["buckets"])
    assert all(b & (b - 1) == 0 for b in gangs["buckets"])  # powers of two
    assert math.isclose(sum(gangs["probs"]), 1.0, abs_tol=1e-4)
    assert sum(gangs["counts"]) == 3034
    runtime = philly["runtime_minutes"]
    assert runtime["dist"] == "lognormal" and runtime["sigma"] > 0
    assert runtime["min"] < math.exp(runtime["mu"]) < runtime["max"]
    arrivals = philly["arrivals"]
    assert len(arrivals["hour_of_week"]) == 168 and len(arrivals["hour_of_day"]) == 24
    assert math.isclose(sum(arrivals["span_profile"]), 1.0, abs_tol=1e-4)
    assert philly["machines"] == {"count": 552, "gpus": 3205,
                                  "by_gpus": {"0": 13, "2": 3, "3": 1, "4": 271, "8": 264}}
    for key in ("gang_sizes", "multigpu50_gang_sizes"):
        assert math.isclose(sum(alibaba[key]["probs"]), 1.0, abs_tol=1e-4)
    assert alibaba["duration_seconds"]["dist"] == "lognormal"
    assert math.isclose(sum(alibaba["arrivals"]["span_profile"]), 1.0, abs_tol=1e-4)


def test_trace_params_is_a_copy() -> None:
    trace_params()["philly"]["jobs"] = -1
    assert trace_params()["philly"]["jobs"] == 3034


# -- determinism and arguments ---------------------------------------------------------------
def test_same_seed_same_instance_other_seed_other_instance(small: Instance) -> None:
    again = generate(**SMALL, seed=1)
    assert again.model_dump_json() == small.model_dump_json()
    other = generate(**SMALL, seed=2)
    assert other.model_dump_json() != small.model_dump_json()


def test_same_seed_same_instance_in_another_process(small: Instance) -> None:
    code = ("import hashlib; from gpualloc.sources.generate import generate; "
            "print(hashlib.sha256(generate(clusters=3, startups=4, jobs=30, periods=8, "
            "seed=1).model_dump_json().encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True, timeout=120)
    assert done.stdout.strip() == hashlib.sha256(small.model_dump_json().encode()).hexdigest()


@pytest.mark.parametrize("bad", [dict(clusters=0), dict(startups=0), dict(jobs=-1),
                                 dict(periods=1), dict(jobs=2.5), dict(clusters=True)])
def test_bad_sizes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate(**{**SMALL, "seed": 0, **bad})  # type: ignore[arg-type]


def test_no_jobs_and_one_cluster_still_valid() -> None:
    inst = generate(clusters=1, startups=1, jobs=0, periods=2, seed=0)
    assert inst.jobs == ()
    inst = generate(clusters=1, startups=2, jobs=5, periods=3, seed=4)
    assert len(inst.jobs) == 5


def test_sizes_are_the_requested_ones(small: Instance) -> None:
    assert len(small.clusters) == 3 and len(small.startups) == 4
    assert len(small.jobs) == 30 and small.horizon.periods == 8
    assert small.horizon.period_hours == 168


# -- every feature ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 7])
def test_every_feature_is_used(seed: int) -> None:
    inst = generate(**SMALL, seed=seed)
    # deliveries / outages
    assert any(p.capacity for c in inst.clusters for p in c.pools)
    # caps: every window kind; the TPP cap on 3A090.a in CN; offshore GPU-hours; a share cap
    assert {c.per for c in inst.caps} == {"period", "horizon", "rolling", "window"}
    tpp = next(c for c in inst.caps if c.metric == "tpp")
    assert (tpp.per, tpp.export_classes, tpp.countries) == ("period", ("3A090.a",), ("CN",))
    offshore = [c for c in inst.caps if c.metric == "gpu_hours" and c.per == "horizon"]
    assert any(c.limit is not None and "CN" not in (c.countries or ()) for c in offshore)
    assert any(c.share_of is not None and c.fraction for c in inst.caps)
    # eligibility: headquarters, restricted classes, a rule
    assert all(s.headquarters for s in inst.startups)
    assert any(s.restricted for s in inst.startups)
    assert len(inst.eligibility) == 1
    # credits on every start-up
    assert all(s.credits is not None and s.credits > 0 for s in inst.startups)
    # dependencies within a start-up, alternatives, windows, mandatory jobs
    with_deps = [j for j in inst.jobs if j.after]
    assert with_deps
    for j in with_deps:
        assert all(inst.job_by_id[d].startup == j.startup for d in j.after)
    assert any(len(j.options) >= 2 for j in inst.jobs)
    assert any(len({o.accelerator for o in j.options}) == 3 for j in inst.jobs)
    assert any(j.release > 0 for j in inst.jobs)
    assert any(j.deadline is not None and j.deadline < inst.horizon.periods for j in inst.jobs)
    assert any(j.mandatory for j in inst.jobs)
    assert all(not j.after for j in inst.jobs if j.mandatory)


def test_job_shapes_are_at_start_up_scale(medium: Instance) -> None:
    gangs = [j.options[0].gpus for j in medium.jobs]
    assert min(gangs) >= 16 and max(gangs) <= 2048
    assert max(gangs) >= 256
    lengths = [o.periods for j in medium.jobs for o in j.options]
    assert min(lengths) >= 1
    # an alternative on a slower chip takes more GPUs or more periods
    slow = [(j.options[0], o) for j in medium.jobs for o in j.options[1:]
            if o.accelerator == "H20" and j.options[0].accelerator in ("H800", "H100")]
    assert slow and all(o.gpus * o.periods > first.gpus * first.periods for first, o in slow)


def test_jobs_are_restricted_to_few_clusters(medium: Instance) -> None:
    assert any(j.clusters for j in medium.jobs) and any(j.regions for j in medium.jobs)
    assert all(s.regions for s in medium.startups)
    assert max(len(medium.allowed_clusters(j)) for j in medium.jobs) <= 4


def test_dependencies_are_acyclic_and_satisfiable(medium: Instance) -> None:
    for j in medium.jobs:
        for d in j.after:
            pred = medium.job_by_id[d]
            shortest = min(o.periods for o in pred.options)
            assert pred.release + shortest <= j.release


def test_medium_tier_model_stays_small(medium: Instance) -> None:
    size = build(medium).size()
    assert 1_000 < size["variables"] < 50_000


def test_tiers() -> None:
    assert set(TIERS) == {"medium", "large", "large-wide", "huge"}
    assert TIERS["large"]["jobs"] == 3000 and TIERS["huge"]["jobs"] == 20000
    wide = dict(TIERS["large-wide"])
    assert wide.pop("windows") == "wide" and wide == TIERS["large"]  # the large shape, wide
    with pytest.raises(ValueError, match="unknown tier"):
        tier_instance("enormous")


# -- solving -----------------------------------------------------------------------------------
def _spend(inst: Instance, plan: Plan) -> dict[str, float]:
    spend: dict[str, float] = defaultdict(float)
    for a in plan.assignments:
        spend[inst.job_by_id[a.job].startup] += a.cost
    return spend


def _credits_bind(inst: Instance, plan: Plan) -> bool:
    """Some start-up spends >= 90 % of its credits, or leaves a job out it could not pay."""
    spend = _spend(inst, plan)
    for s in inst.startups:
        assert s.credits is not None
        if spend[s.id] >= 0.9 * s.credits:
            return True
        left = s.credits - spend[s.id]
        for j in inst.jobs:
            if j.startup == s.id and j.id in plan.unscheduled:
                costs = [inst.cost(c, o) for _, o, c in inst.placements(j)]
                if costs and min(costs) > left:
                    return True
    return False


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_credits_bind_under_greedy(seed: int) -> None:
    inst = generate(**SMALL, seed=seed)
    plan = optimizer.solve(inst, "greedy", time_limit=30)
    check_plan(inst, plan)
    assert _credits_bind(inst, plan)


def test_small_instance_solves_to_a_valid_plan(small: Instance) -> None:
    plan = optimizer.solve(small, "cpsat", time_limit=10, workers=1)
    check_plan(small, plan)  # validate(inst, plan) == [] and the status contract
    assert plan.is_feasible and plan.assignments
    assert {j.id for j in small.jobs if j.mandatory} <= {a.job for a in plan.assignments}
    assert _credits_bind(small, plan)


def test_medium_tier_greedy_plan_is_valid(medium: Instance) -> None:
    plan = optimizer.solve(medium, "greedy", time_limit=60)
    check_plan(medium, plan)
    assert len(plan.assignments) > len(medium.jobs) / 3


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_generate_writes_yaml_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["generate", "--clusters", "3", "--startups", "4", "--jobs", "30", "--periods", "8",
            "--seed", "1"]
    for name in ("inst.yaml", "inst.json"):
        out = tmp_path / name
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert load_instance(out) == generate(**SMALL, seed=1)
    text = (tmp_path / "inst.json").read_text(encoding="utf-8")
    assert json.loads(text)["name"] == "synthetic-c3-s4-j30-p8-seed1"
    result = runner.invoke(app, args)  # no --out: YAML on stdout
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["name"] == "synthetic-c3-s4-j30-p8-seed1"


def test_cli_generate_refuses_bad_input() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--tier", "enormous"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["generate", "--periods", "1"])
    assert result.exit_code == 2


def test_cli_bench_needs_something_to_run() -> None:
    result = CliRunner().invoke(app, ["bench"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["bench", "--tier", "enormous"])
    assert result.exit_code == 2


# -- wide windows ------------------------------------------------------------------------------
def test_wide_windows_give_many_starts_per_option_and_solve_validly() -> None:
    narrow = generate(**SMALL, seed=4)
    wide = generate(**SMALL, seed=4, windows="wide")
    assert [j.id for j in wide.jobs] == [j.id for j in narrow.jobs]
    periods = wide.horizon.periods
    assert all(wide.deadline(j) == periods for j in wide.jobs)
    early = sum(j.release <= periods // 4 for j in wide.jobs)
    assert early >= 0.8 * len(wide.jobs)  # chains may release a follower later
    n_narrow, n_wide = build(narrow).num_vars, build(wide).num_vars
    assert n_wide > 2 * n_narrow
    plan = optimizer.solve(wide, "cpsat", time_limit=20)
    check_plan(wide, plan)
    again = generate(**SMALL, seed=4, windows="wide")
    assert again == wide  # deterministic in the seed


def test_unknown_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="windows must be one of"):
        generate(**SMALL, seed=0, windows="sideways")
