"""What-if studies: identical plans serially, in processes and on Dask; monotonicity; sweeps."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest

from gpualloc.analysis.whatif import (
    comparison_rows,
    parse_sweep,
    plot_study,
    plot_sweep,
    run_study,
    sweep,
    sweep_rows,
    write_csv,
)
from gpualloc.models import Instance, InstanceError
from gpualloc.models.scenarios import apply, parse_scenarios
from gpualloc.models.validator import validate
from gpualloc.optimizer import solve
from tests.strategies import random_instance

BASE: dict[str, Any] = {
    "name": "study",
    "horizon": {"periods": 6, "period_hours": 10},
    "clusters": [
        {"id": "cn1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0},
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 0.5},
        ]},
        {"id": "sg1", "region": "south", "country": "SG", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0},
        ]},
    ],
    "startups": [{"id": "alpha", "credits": 600}, {"id": "beta", "credits": 2000}],
    "jobs": [
        {"id": "a1", "startup": "alpha", "value": 10, "options": [
            {"accelerator": "H800", "gpus": 8, "periods": 3},
            {"accelerator": "H20", "gpus": 16, "periods": 3, "value": 7}]},
        {"id": "a2", "startup": "alpha", "value": 6, "after": ["a1"],
         "options": [{"accelerator": "H20", "gpus": 8, "periods": 2}]},
        {"id": "a3", "startup": "alpha", "value": 4,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 2}]},
        {"id": "b1", "startup": "beta", "value": 8,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 4}]},
        {"id": "b2", "startup": "beta", "value": 5,
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 3},
                     {"accelerator": "H20", "gpus": 16, "periods": 2, "value": 3}]},
        {"id": "b3", "startup": "beta", "value": 3,
         "options": [{"accelerator": "H20", "gpus": 8, "periods": 3}]},
    ],
    # H800 is 3A090.a; 8 H800 in CN use 8 * 15832 TPP.
    "caps": [{"id": "cn-a", "metric": "tpp", "per": "period", "limit": 8 * 15832,
              "countries": ["CN"], "export_classes": ["3A090.a"]}],
}
SCENARIOS = parse_scenarios({"scenarios": [
    {"name": "cap-half", "changes": [{"kind": "cap", "id": "cn-a", "scale": 0.5}]},
    {"name": "more-h800", "changes": [{"kind": "pool_gpus", "cluster": "cn1",
                                       "accelerator": "H800", "add": 8, "from": 2}]},
    {"name": "rich", "changes": [{"kind": "credits", "startup": "all", "scale": 2}]},
]})


@pytest.fixture(scope="module")
def base() -> Instance:
    return Instance.model_validate(copy.deepcopy(BASE))


def _fingerprint(results: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.name, r.plan.status.value, r.plan.objective,
             tuple(sorted((a.job, a.cluster, a.accelerator, a.start) for a in r.plan.assignments)))
            for r in results]


@pytest.fixture(scope="module")
def serial(base: Instance) -> list[Any]:
    seen: list[tuple[int, int, str]] = []
    results = run_study(base, SCENARIOS, time_limit=20, workers=1,
                        progress=lambda d, t, n: seen.append((d, t, n)))
    assert [s[0] for s in seen] == [1, 2, 3, 4] and {s[1] for s in seen} == {4}
    return results


def test_study_results(base: Instance, serial: list[Any]) -> None:
    assert [r.name for r in serial] == ["base", "cap-half", "more-h800", "rich"]
    for r in serial:
        assert r.plan.status.value == "optimal"
        assert validate(r.instance, r.plan) == []
    rows = comparison_rows(serial)
    by = {r["scenario"]: r for r in rows}
    assert by["base"]["delta"] == 0
    assert by["cap-half"]["delta"] < 0          # no H800 can run in CN any more
    assert by["more-h800"]["delta"] >= 0
    assert by["rich"]["delta"] >= 0
    assert by["base"]["binding_caps"] == ["cn-a"]
    assert set(by["base"]["spend"]) == {"alpha", "beta"}
    assert serial[1].instance.caps[0].limit == 4 * 15832
    assert base.caps[0].limit == 8 * 15832


def test_processes_match_serial(base: Instance, serial: list[Any]) -> None:
    parallel = run_study(base, SCENARIOS, time_limit=20, workers=2)
    assert _fingerprint(parallel) == _fingerprint(serial)


def test_dask_matches_serial(base: Instance, serial: list[Any]) -> None:
    distributed = pytest.importorskip("distributed")
    import dask

    # Forked worker processes start in well under a second (spawned ones take seconds).
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster:
        on_dask = run_study(base, SCENARIOS, time_limit=20,
                            dask_address=cluster.scheduler_address)
    assert _fingerprint(on_dask) == _fingerprint(serial)


def test_study_errors_are_all_reported_before_solving(base: Instance) -> None:
    bad = parse_scenarios({"scenarios": [
        {"name": "x", "changes": [{"kind": "cap", "id": "nope", "scale": 2}]},
        {"name": "y", "changes": [{"kind": "remove_jobs", "ids": ["zz"]}]}]})
    with pytest.raises(InstanceError) as info:
        run_study(base, bad, time_limit=5)
    assert info.value.messages == ["scenarios[0].changes[0].id: unknown cap 'nope'",
                                   "scenarios[1].changes[0].ids[0]: unknown job 'zz'"]


def test_csv_and_plot(serial: list[Any], tmp_path: Path) -> None:
    write_csv(comparison_rows(serial), tmp_path / "s.csv")
    with open(tmp_path / "s.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["scenario"] for r in rows] == ["base", "cap-half", "more-h800", "rich"]
    assert "spend:alpha" in rows[0] and rows[0]["binding_caps"] == "cn-a"
    plot_study(serial, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


# -- monotonicity --------------------------------------------------------------------------
def _optimum(inst: Instance) -> float:
    plan = solve(inst, time_limit=20)
    assert plan.status.value == "optimal"
    assert validate(inst, plan) == []
    assert plan.objective is not None
    return plan.objective


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_loosening_never_lowers_the_optimum(seed: int) -> None:
    inst = random_instance(seed, periods=4, jobs=6)
    before = _optimum(inst)
    changes: list[list[dict[str, Any]]] = []
    for cap in inst.caps:
        changes.append([{"kind": "cap", "id": cap.id, "scale": 1.5}])
    cluster = inst.clusters[0]
    if cluster.pools:
        changes.append([{"kind": "pool_gpus", "cluster": cluster.id,
                         "accelerator": cluster.pools[0].accelerator, "add": 8,
                         "from": seed % 3}])
    changes.append([{"kind": "credits", "startup": "all", "scale": 1.5}])
    assert changes
    for change in changes:
        assert _optimum(apply(inst, change)) >= before - 1e-6, change


# -- sweeps --------------------------------------------------------------------------------
def test_parse_sweep() -> None:
    s = parse_sweep("cap:restricted-cn=0.25x..2x:8")
    assert (s.kind, s.target, s.mode, s.points) == ("cap", "restricted-cn", "scale", 8)
    assert s.values()[0] == 0.25 and s.values()[-1] == 2.0 and len(s.values()) == 8
    s = parse_sweep("credits:moonshot=0.5x..1.5x:5")
    assert s.values() == [0.5, 0.75, 1.0, 1.25, 1.5]
    assert parse_sweep("credits:all=1e6..2e6:2").mode == "set"
    s = parse_sweep("pool:hz-1/H20=+0..+2000:5")
    assert (s.kind, s.target, s.mode, s.from_period) == ("pool", "hz-1/H20", "add", 0)
    assert s.values() == [0, 500, 1000, 1500, 2000]
    assert parse_sweep("pool:hz-1/H20@8=-100..+100:3").from_period == 8
    assert parse_sweep("cap:c=1x..1x:1").values() == [1.0]


@pytest.mark.parametrize("text", [
    "cap:restricted-cn=0.25x..2x", "cap:restricted-cn:0.25x..2x:8", "gpu:x=1..2:3",
    "cap:c=0.25x..2:3", "cap:c=-1..2:3", "cap:c=1x..2x:0", "cap:c=1x..2x:many",
    "cap:c=ax..2x:3", "pool:hz-1=+0..+10:2", "pool:a/b=0x..1x:2", "pool:a/b@x=0..1:2",
    "cap:c=1x..2x:1", "cap:c=inf..1:2", "cap:c=nan..1:2",
])
def test_bad_sweeps_are_located(text: str) -> None:
    with pytest.raises(InstanceError) as info:
        parse_sweep(text)
    assert info.value.issues[0].location == "--sweep"


def test_sweep_cap(base: Instance, tmp_path: Path) -> None:
    points = sweep(base, "cap:cn-a=0x..2x:5", time_limit=20)
    assert [p.x for p in points] == [0.0, 0.5, 1.0, 1.5, 2.0]
    objectives = [p.objective for p in points]
    assert all(p.plan.status.value == "optimal" for p in points)
    assert objectives == sorted(objectives)  # a looser cap never hurts
    for p in points:
        assert validate(p.instance, p.plan) == []
    rows = sweep_rows(points)
    assert rows[2]["label"] == "1x"
    plot_sweep(points, parse_sweep("cap:cn-a=0x..2x:5"), tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_sweep_unknown_target(base: Instance) -> None:
    with pytest.raises(InstanceError) as info:
        sweep(base, "cap:nope=1x..2x:2", time_limit=5)
    assert info.value.messages == ["--sweep: unknown cap 'nope'"]
    with pytest.raises(InstanceError) as info:
        sweep(base, "pool:cn1/B200=+0..+8:2", time_limit=5)
    assert info.value.messages == ["--sweep: cluster 'cn1' has no 'B200' pool"]
