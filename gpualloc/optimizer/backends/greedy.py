"""Greedy value-density baseline, exposed as backend ``greedy`` and used as a warm start.

It works on the neutral model's rows, so it respects every rule the exact backends do: a
placement is taken only if every row it appears in stays satisfied. Mandatory jobs go first,
then placements by objective per GPU-period (best first); jobs whose predecessors are not yet
placed are retried in later passes. It proves nothing: its bound is None.
"""

from __future__ import annotations

import time

from ..model.formulation import LinearModel
from .base import BackendResult, ProgressCallback, SolveParams


def density(model: LinearModel, i: int) -> float:
    """Objective per GPU-period of placement ``i``: the greedy's order."""
    p = model.placements[i]
    return model.objective[i] / max(1.0, p.gpus * p.periods)


def greedy_values(model: LinearModel, deadline: float | None = None,
                  order: list[int] | None = None) -> list[float]:
    """A 0/1 vector satisfying every ``<=`` row (``==`` rows of mandatory jobs if it can).

    ``order`` replaces the value-density order of the placements (mandatory jobs still first).
    """
    n = model.num_vars
    touches: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    floors: set[int] = set()  # vars of ">=" rows (min_share floors): they never block, go first
    for r, row in enumerate(model.rows):
        if row.sense == ">=":
            floors.update(row.vars)
            continue
        for v, c in zip(row.vars, row.coefs, strict=True):
            touches[v].append((r, c))
    lhs = [0.0] * len(model.rows)
    limit = [row.rhs + 1e-9 * max(1.0, abs(row.rhs)) for row in model.rows]
    values = [0.0] * n
    placed: set[str] = set()
    mandatory = model.forced_jobs()

    if order is None:
        order = sorted(range(n), key=lambda i: (model.placements[i].job not in mandatory,
                                                i not in floors, -density(model, i),
                                                model.placements[i].start, i))
    else:
        order = sorted(order, key=lambda i: model.placements[i].job not in mandatory)
    changed = True
    while changed:
        changed = False
        for i in order:
            if deadline is not None and time.perf_counter() > deadline:
                return values
            job = model.placements[i].job
            if job in placed or (model.objective[i] <= 0 and job not in mandatory):
                continue
            if all(lhs[r] + c <= limit[r] for r, c in touches[i]):
                for r, c in touches[i]:
                    lhs[r] += c
                values[i] = 1.0
                placed.add(job)
                changed = True
    return values


class GreedyBackend:
    """Value-density greedy heuristic (fast, rule-complete, no proof)."""

    name = "greedy"

    def available(self) -> bool:
        return True

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None) -> BackendResult:
        began = time.perf_counter()
        deadline = None if params.time_limit is None else began + params.time_limit
        values = greedy_values(model, deadline)
        if model.check(values):
            return BackendResult("unknown", None, None, {"greedy": "no feasible plan found"})
        return BackendResult("feasible", values, None,
                             {"greedy_seconds": time.perf_counter() - began})
