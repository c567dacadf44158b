"""Extra limits for trade-off curves (``solve(..., limits={...})``, ``analysis.pareto``).

- ``spend``: the total spend of all start-ups (``sum cost * x``) is at most the value;
- ``changes``: a re-plan (``previous``) changes at most this many previously assigned, not
  frozen jobs (dropped, moved or retimed, as ``optimizer.replan`` counts them): with ``P`` such
  jobs, at least ``P - value`` of the placements repeating their previous assignment are chosen.

They restrict the plan beyond the instance's rules; every plan stays valid for the instance.
"""

from __future__ import annotations

from ..models import Instance
from .model.formulation import LinearModel, Row
from .model.replan import Replan

LIMIT_KINDS = ("spend", "changes")


def add_limits(instance: Instance, model: LinearModel, limits: dict[str, float],
               replan: Replan | None) -> None:
    """Add a row per limit to ``model`` (in place); unknown kinds are a ``ValueError``."""
    for kind, value in limits.items():
        if kind not in LIMIT_KINDS:
            raise ValueError(f"unknown limit {kind!r}; choose from {', '.join(LIMIT_KINDS)}")
        if value is None or value < 0:
            raise ValueError(f"limit {kind} must be a number >= 0, got {value!r}")
        if kind == "spend":
            idx = list(range(model.num_vars))
            model.rows.append(Row("limit", "limit[spend]", idx,
                                  [model.placements[i].cost for i in idx], "<=", float(value)))
            continue
        if replan is None:
            raise ValueError("a changes limit needs a previous plan")
        index = {(p.job, p.cluster, p.accelerator, p.gpus, p.start, p.periods): i
                 for i, p in enumerate(model.placements)}
        counted = set(replan.counted)
        repeats = [index[k] for a in replan.previous.assignments if a.job in counted
                   and (k := (a.job, a.cluster, a.accelerator, a.gpus, a.start,
                              a.end - a.start)) in index]
        need = len(counted) - int(value)
        if need > 0:
            model.rows.append(Row("limit", "limit[changes]", repeats, [1.0] * len(repeats),
                                  ">=", float(need)))


__all__ = ["LIMIT_KINDS", "add_limits"]
