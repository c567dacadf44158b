"""Scenario changes: each kind applies to a copy, shows its effect, and locates bad targets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gpualloc.models import Instance, InstanceError, load_instance
from gpualloc.models.scenarios import apply, apply_with_notes, load_scenarios

BASE: dict[str, Any] = {
    "name": "sc",
    "horizon": {"periods": 6, "period_hours": 10},
    "clusters": [
        {"id": "cn1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0,
             "capacity": [{"from": 3, "gpus": 4}]},
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 0.5},
        ]},
        {"id": "sg1", "region": "south", "country": "SG", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0},
        ]},
    ],
    "startups": [{"id": "alpha", "credits": 400}, {"id": "beta", "credits": None}],
    "jobs": [
        {"id": "a1", "startup": "alpha", "value": 10, "options": [
            {"accelerator": "H800", "gpus": 4, "periods": 2},
            {"accelerator": "H20", "gpus": 8, "periods": 3, "value": 7}]},
        {"id": "a2", "startup": "alpha", "value": 5, "after": ["a1"],
         "options": [{"accelerator": "H20", "gpus": 4, "periods": 2}]},
        {"id": "a3", "startup": "alpha", "value": 1, "after": ["a2"],
         "options": [{"accelerator": "H20", "gpus": 4, "periods": 1}]},
        {"id": "b1", "startup": "beta", "value": 3, "clusters": ["sg1"],
         "options": [{"accelerator": "H800", "gpus": 8, "periods": 3}]},
    ],
    "caps": [
        {"id": "cn-tpp", "metric": "tpp", "limit": 60000, "countries": ["CN"]},
        {"id": "sg-share", "metric": "gpus", "clusters": ["sg1"],
         "share_of": {"clusters": ["cn1", "sg1"]}, "fraction": 0.5},
    ],
}


@pytest.fixture
def base() -> Instance:
    return Instance.model_validate(copy.deepcopy(BASE))


def _same_as_built(inst: Instance) -> None:
    assert inst == Instance.model_validate(copy.deepcopy(BASE)), "the base was modified"


def test_cap_set_and_scale(base: Instance) -> None:
    new = apply(base, [{"kind": "cap", "id": "cn-tpp", "scale": 0.5}])
    assert new.caps[0].limit == 30000
    assert apply(base, [{"kind": "cap", "id": "cn-tpp", "set": 1234}]).caps[0].limit == 1234
    # a share cap without a limit: scale scales the fraction (at most 1), set adds a limit
    assert apply(base, [{"kind": "cap", "id": "sg-share", "scale": 1.5}]).caps[1].fraction \
        == 0.75
    assert apply(base, [{"kind": "cap", "id": "sg-share", "scale": 4}]).caps[1].fraction == 1.0
    added = apply(base, [{"kind": "cap", "id": "sg-share", "set": 16}]).caps[1]
    assert added.limit == 16 and added.fraction == 0.5
    _same_as_built(base)
    assert base.caps[0].limit == 60000


def test_pool_gpus_rewrites_capacity(base: Instance) -> None:
    pool = base.cluster_by_id["cn1"].pool("H800")
    assert pool is not None
    before = [pool.gpus_at(t) for t in range(8)]  # 8 8 8 4 4 4 4 4
    new = apply(base, [{"kind": "pool_gpus", "cluster": "cn1", "accelerator": "H800",
                        "add": 6, "from": 2}]).cluster_by_id["cn1"].pool("H800")
    assert new is not None
    assert [new.gpus_at(t) for t in range(8)] == [b + 6 * (t >= 2) for t, b in enumerate(before)]
    # negative adds are clamped at zero; until bounds the change
    cut = apply(base, [{"kind": "pool_gpus", "cluster": "cn1", "accelerator": "H800",
                        "add": -6, "from": 1, "until": 5}]).cluster_by_id["cn1"].pool("H800")
    assert cut is not None
    assert [cut.gpus_at(t) for t in range(8)] == [8, 2, 2, 0, 0, 4, 4, 4]
    _same_as_built(base)


def test_clusters_and_pools(base: Instance) -> None:
    extra = {"id": "us1", "region": "west", "country": "US", "pools": [
        {"accelerator": "H100", "gpus": 32, "price_per_gpu_hour": 3.0}]}
    new = apply(base, [{"kind": "add_cluster", "cluster": extra}])
    assert new.cluster_by_id["us1"].pools[0].gpus == 32

    new, notes = apply_with_notes(base, [{"kind": "remove_cluster", "id": "sg1"}])
    assert "sg1" not in new.cluster_by_id
    assert new.job_by_id["b1"].clusters == ()  # the reference is dropped: it cannot run now
    assert new.caps[1].clusters == () and new.caps[1].share_of.clusters == ("cn1",)
    assert any("b1" in n for n in notes)

    pool = {"accelerator": "H100", "gpus": 4, "price_per_gpu_hour": 2.5}
    new = apply(base, [{"kind": "add_pool", "cluster": "sg1", "pool": pool}])
    assert new.cluster_by_id["sg1"].pool("H100") is not None
    new = apply(base, [{"kind": "remove_pool", "cluster": "cn1", "accelerator": "H20"}])
    assert new.cluster_by_id["cn1"].pool("H20") is None
    _same_as_built(base)


def test_credits_price_regime(base: Instance) -> None:
    new = apply(base, [{"kind": "credits", "startup": "alpha", "scale": 2}])
    assert new.startup_by_id["alpha"].credits == 800
    everyone = apply(base, [{"kind": "credits", "startup": "all", "scale": 0.5}])
    assert everyone.startup_by_id["alpha"].credits == 200
    assert everyone.startup_by_id["beta"].credits is None  # unlimited stays unlimited
    assert apply(base, [{"kind": "credits", "startup": "all", "set": 5}]).startup_by_id[
        "beta"].credits == 5

    new = apply(base, [{"kind": "price", "accelerator": "H800", "scale": 2}])
    assert new.cluster_by_id["cn1"].pool("H800").price_per_gpu_hour == 2.0
    assert new.cluster_by_id["sg1"].pool("H800").price_per_gpu_hour == 4.0
    assert new.cluster_by_id["cn1"].pool("H20").price_per_gpu_hour == 0.5
    new = apply(base, [{"kind": "price", "cluster": "cn1", "set": 9}])
    assert {p.price_per_gpu_hour for p in new.cluster_by_id["cn1"].pools} == {9.0}
    assert new.cluster_by_id["sg1"].pool("H800").price_per_gpu_hour == 2.0

    assert base.regime == "oct2023"
    assert apply(base, [{"kind": "regime", "regime": "jan2026"}]).regime == "jan2026"
    _same_as_built(base)


def test_jobs(base: Instance) -> None:
    job = {"id": "b2", "startup": "beta", "value": 2,
           "options": [{"accelerator": "H20", "gpus": 2, "periods": 1}]}
    new = apply(base, [{"kind": "add_jobs", "jobs": [job]}])
    assert new.job_by_id["b2"].value == 2
    new, notes = apply_with_notes(base, [{"kind": "remove_jobs", "ids": ["a1"]}])
    assert set(new.job_by_id) == {"b1"}  # a2 after a1, a3 after a2: both removed
    assert len(notes) == 2 and all("removed too" in n for n in notes)
    _same_as_built(base)


@pytest.mark.parametrize(("change", "where", "message"), [
    ({"kind": "cap", "id": "x", "scale": 2}, "changes[0].id", "unknown cap 'x'"),
    ({"kind": "pool_gpus", "cluster": "zz", "accelerator": "H800", "add": 1},
     "changes[0].cluster", "unknown cluster 'zz'"),
    ({"kind": "pool_gpus", "cluster": "sg1", "accelerator": "H20", "add": 1},
     "changes[0].accelerator", "no 'H20' pool"),
    ({"kind": "remove_cluster", "id": "zz"}, "changes[0].id", "unknown cluster"),
    ({"kind": "add_cluster", "cluster": {"id": "sg1", "region": "r", "country": "SG"}},
     "changes[0].cluster.id", "exists"),
    ({"kind": "add_pool", "cluster": "cn1",
      "pool": {"accelerator": "H20", "gpus": 1, "price_per_gpu_hour": 1}},
     "changes[0].pool.accelerator", "already has"),
    ({"kind": "remove_pool", "cluster": "cn1", "accelerator": "B200"},
     "changes[0].accelerator", "no 'B200' pool"),
    ({"kind": "credits", "startup": "gamma", "scale": 2}, "changes[0].startup",
     "unknown start-up"),
    ({"kind": "price", "cluster": "cn1", "accelerator": "B200", "scale": 2},
     "changes[0].accelerator", "no 'B200' pool"),
    ({"kind": "add_jobs", "jobs": [{"id": "a1", "startup": "alpha",
                                    "options": [{"accelerator": "H20", "gpus": 1,
                                                 "periods": 1}]}]},
     "changes[0].jobs[0].id", "exists"),
    ({"kind": "remove_jobs", "ids": ["a1", "nope"]}, "changes[0].ids[1]", "unknown job"),
    ({"kind": "regime", "regime": "oct2099"}, "changes[0].regime", ""),
    ({"kind": "cap", "id": "cn-tpp"}, "changes[0]", "exactly one of set or scale"),
    ({"kind": "teleport"}, "changes[0]", "unknown change kind 'teleport'"),
])
def test_bad_targets_are_located(base: Instance, change: dict[str, Any], where: str,
                                 message: str) -> None:
    with pytest.raises(InstanceError) as info:
        apply(base, [{"kind": "cap", "id": "cn-tpp", "scale": 1}, change],
              where="scenarios[1].changes")
    located = where.replace("changes[0]", "scenarios[1].changes[1]")
    assert [i.location for i in info.value.issues] == [located], info.value.messages
    assert message in info.value.issues[0].message
    _same_as_built(base)


def test_resulting_instance_errors_are_reported(base: Instance) -> None:
    job = {"id": "b2", "startup": "nobody", "options": [{"accelerator": "H20", "gpus": 1,
                                                         "periods": 1}]}
    with pytest.raises(InstanceError) as info:
        apply(base, [{"kind": "add_jobs", "jobs": [job]}], where="scenarios[0].changes")
    assert "scenarios[0].changes (resulting instance) jobs[4].startup" in info.value.messages[0]


def test_load_scenarios_locates_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n"
                    "  - name: ok\n"
                    "    changes: [{kind: cap, id: cn-tpp, scale: 0.5}]\n"
                    "  - name: bad\n"
                    "    changes: [{kind: cap, id: cn-tpp, scale: '2'}, {kind: nope}]\n")
    with pytest.raises(InstanceError) as info:
        load_scenarios(path)
    assert [i.location for i in info.value.issues] == [
        "scenarios[1].changes[0].scale", "scenarios[1].changes[1]"]
    path.write_text("scenarios:\n  - {name: a}\n  - {name: a}\n  - {name: base}\n")
    with pytest.raises(InstanceError) as info:
        load_scenarios(path)
    assert [i.location for i in info.value.issues] == ["scenarios[1].name",
                                                       "scenarios[2].name"]
    path.write_text("scenarios: [{name: a, changes: [{kind: cap, id: x, scale: 1}]}]\n"
                    "bogus: 1\n")
    with pytest.raises(InstanceError) as info:
        load_scenarios(path)
    assert info.value.messages == ["bogus: unknown key"]
    path.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(InstanceError):
        load_scenarios(path)


def test_bundled_example_applies_to_the_portfolio() -> None:
    root = Path(__file__).resolve().parents[2]
    base = load_instance(root / "instances" / "portfolio.yaml")
    scenarios = load_scenarios(root / "instances" / "scenarios.yaml", base)
    assert len(scenarios) >= 5
    for sc in scenarios:
        assert apply(base, sc.changes) != base
