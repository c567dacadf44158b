"""Fixtures shared by the optimizer tests."""

from __future__ import annotations

import pytest

from gpualloc.models import Instance
from gpualloc.optimizer import solve
from gpualloc.sources.generate import generate


@pytest.fixture(scope="module")
def instance() -> Instance:
    """A small generated instance (60 jobs, 12 periods, ~400 binaries) using every feature."""
    return generate(4, 5, 60, 12, seed=3)


@pytest.fixture(scope="module")
def exact(instance: Instance) -> float:
    """``instance``'s optimum, proven by CP-SAT on the whole model."""
    plan = solve(instance, "cpsat", time_limit=30, strategy="exact")
    assert plan.status.value == "optimal"
    assert plan.objective is not None
    return plan.objective
