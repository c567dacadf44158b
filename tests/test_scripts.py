"""The held-out shape scripts make valid instances of the shape they describe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gpualloc.models import Instance
from gpualloc.sources.generate import generate

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _depth(instance: Instance) -> int:
    after = {j.id: j.after for j in instance.jobs}
    memo: dict[str, int] = {}

    def depth(job: str) -> int:
        if job not in memo:
            memo[job] = 1 + max((depth(d) for d in after[job]), default=0)
        return memo[job]

    return max(map(depth, after))


def test_chain_shape_has_deep_chains_and_cut_credits() -> None:
    chains = _script("chain_shape")
    data = chains.make(5)
    instance = Instance.model_validate(data)
    assert _depth(instance) >= 3
    assert not any(j.mandatory for j in instance.jobs if j.after)
    assert chains.make(5) == data  # deterministic in the seed
    base = generate(10, 20, 800, 52, seed=5, windows="wide")
    before = {s.id: s.credits for s in base.startups if s.credits is not None}
    assert before
    for s in instance.startups:
        if s.id in before:
            assert s.credits == pytest.approx(chains.CREDIT_SCALE * before[s.id])


def test_tight_shape_scales_pools_caps_and_credits() -> None:
    tight = _script("tight_shape")
    data = tight.make(4, 8, 60, 40, 11, pools=0.5, caps=0.5, credits=0.6)
    instance = Instance.model_validate(data)
    base = generate(4, 8, 60, 40, seed=11, windows="wide")
    assert not any(j.mandatory for j in instance.jobs)
    assert tight.make(4, 8, 60, 40, 11) == data  # deterministic in the seed
    pools = {(c.id, p.accelerator): p.gpus for c in base.clusters for p in c.pools}
    assert pools
    for c in instance.clusters:
        for p in c.pools:
            assert p.gpus == max(1, int(pools[c.id, p.accelerator] * 0.5))
    limits = {c.id: c.limit for c in base.caps if c.limit is not None}
    assert limits
    for cap in instance.caps:
        if cap.id in limits:
            assert cap.limit == pytest.approx(0.5 * limits[cap.id])
    credits = {s.id: s.credits for s in base.startups if s.credits is not None}
    assert credits
    for s in instance.startups:
        if s.id in credits:
            assert s.credits == pytest.approx(0.6 * credits[s.id])
    kept = Instance.model_validate(tight.make(4, 8, 60, 40, 11, keep_mandatory=True))
    assert [j.mandatory for j in kept.jobs] == [j.mandatory for j in base.jobs]
