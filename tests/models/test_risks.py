"""Risks files: the scenario change kinds, located errors all at once, cases; cap ``from``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpualloc.models import Instance, InstanceError, load_instance
from gpualloc.models.risks import (
    NOMINAL,
    cases,
    first_change_period,
    load_risks,
    nominal_probability,
    parse_risks,
)
from gpualloc.models.scenarios import apply

REPO = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "name": "risky",
    "horizon": {"periods": 6, "period_hours": 10},
    "clusters": [{"id": "c1", "region": "r", "country": "CN", "pools": [
        {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0}]}],
    "startups": [{"id": "s"}],
    "jobs": [{"id": "j1", "startup": "s", "value": 1,
              "options": [{"accelerator": "H800", "gpus": 8, "periods": 2}]}],
    "caps": [{"id": "tpp", "metric": "gpus", "per": "period", "limit": 8}],
}


@pytest.fixture
def base() -> Instance:
    return Instance.model_validate(BASE)


def test_parse_and_cases(base: Instance) -> None:
    risks = parse_risks({"risks": [
        {"name": "slip", "probability": 0.25, "changes": [
            {"kind": "pool_gpus", "cluster": "c1", "accelerator": "H800", "add": -8,
             "from": 2, "until": 4}]},
        {"name": "cap", "probability": 0.5, "changes": [
            {"kind": "cap", "id": "tpp", "scale": 0.5, "from": 3}]},
    ]}, base=base)
    assert nominal_probability(risks) == pytest.approx(0.25)
    assert first_change_period(risks) == 2
    got = cases(base, risks)
    assert [c.name for c in got] == [NOMINAL, "slip", "cap"]
    assert sum(c.probability for c in got) == pytest.approx(1.0)
    assert got[0].instance is base
    pool = got[1].instance.clusters[0].pools[0]
    assert [pool.gpus_at(t) for t in range(6)] == [8, 8, 0, 0, 8, 8]
    assert got[1].instance == apply(base, risks[0].changes)


def test_errors_are_located_and_reported_at_once(base: Instance) -> None:
    data = {"risks": [
        {"name": "a", "probability": 1.5, "changes": []},
        {"name": "b", "probability": 0.5, "changes": [
            {"kind": "pool_gpus", "cluster": "x", "accelerator": "H800", "add": 1}]},
        {"name": "b", "probability": 0.5, "changes": [{"kind": "nope"}]},
        {"name": NOMINAL, "probability": 0.1, "changes": [{"kind": "cap", "id": "zz",
                                                           "set": 1}]},
    ]}
    with pytest.raises(InstanceError) as e:
        parse_risks(data, "r.yaml", base)
    text = "\n".join(e.value.messages)
    assert "risks[0].probability" in text
    assert "risks[2].changes[0]" in text and "unknown change kind 'nope'" in text
    # the risks that parse on their own are checked further, all in the same error
    assert "risks[1].changes[0].cluster: unknown cluster 'x'" in text
    assert "risks[3].name" in text and "reserved" in text
    assert "risks[3].changes[0].id: unknown cap 'zz'" in text
    assert e.value.source == "r.yaml"


def test_probabilities_sum_to_at_most_one(base: Instance) -> None:
    with pytest.raises(InstanceError) as e:
        parse_risks({"risks": [{"name": "a", "probability": 0.6},
                               {"name": "b", "probability": 0.6},
                               {"name": "b", "probability": 0.0}]})
    text = "\n".join(e.value.messages)
    assert "risks: probabilities sum to 1.2" in text
    assert "risks[2].name: duplicate risk 'b'" in text
    assert parse_risks({"risks": [{"name": "a", "probability": 0.5},
                                  {"name": "b", "probability": 0.5}]})


def test_nothing_in_the_file_is_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("risks: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(InstanceError):
        load_risks(path)
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()


def test_cap_from_tightens_only_later_periods(base: Instance) -> None:
    tight = apply(base, [{"kind": "cap", "id": "tpp", "scale": 0.5, "from": 4}])
    extra = {c.id: c for c in tight.caps if c.id != "tpp"}
    assert sorted(extra) == ["tpp@4", "tpp@5"]
    assert all(c.limit == 4 and c.per == "window" for c in extra.values())
    loose = apply(base, [{"kind": "cap", "id": "tpp", "scale": 2, "from": 4}])
    assert loose.caps[0].limit == 16
    assert sorted(c.id for c in loose.caps[1:]) == [f"tpp@{t}" for t in range(4)]
    assert apply(base, [{"kind": "cap", "id": "tpp", "scale": 0.5, "from": 9}]).caps == \
        base.caps  # from past the horizon: nothing changes
    with pytest.raises(InstanceError) as e:
        apply(base, [{"kind": "cap", "id": "tpp", "scale": 0.5, "from": 1},
                     {"kind": "cap", "id": "tpp@1", "scale": 0.5, "from": 1}], where="c")
    assert e.value.messages == ["c[1].from: from needs a per-period cap with a limit"]


def test_bundled_risks_fit_the_portfolio() -> None:
    portfolio = load_instance(REPO / "instances" / "portfolio.yaml")
    risks = load_risks(REPO / "instances" / "risks.yaml", portfolio)
    assert [r.name for r in risks] == ["h20-licence-revoked", "ascend-delivery-slips",
                                       "restricted-cn-tightened"]
    assert 0 < nominal_probability(risks) < 1
    slipped = cases(portfolio, risks)[2].instance.cluster_by_id["zjk-1"].pool("Ascend910B")
    assert slipped is not None
    assert [slipped.gpus_at(t) for t in (7, 8, 13, 14)] == [2048, 2048, 2048, 3072]
