"""The one translation of a ``LinearModel`` into a PuLP problem (for CBC, HiGHS and analyses).

``to_pulp`` makes one variable per placement (binary, or in [0, 1] with ``relax``), the
objective (maximised, or its negation minimised) and one constraint ``r{k}`` per model row.
Analyses that add variables of their own (an elastic model's slacks) pass their ``prob`` and
``row_terms(k)``, the extra terms of row ``k``, and leave the objective to themselves with
``objective=False``. A ``Stop`` is checked while rows are added: a translation that cannot
finish raises ``StopRequested``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..stop import Stop, StopRequested
from .formulation import LinearModel

RowTerms = Callable[[int], Sequence[tuple[Any, float]]]


@dataclass
class PulpForm:
    """A PuLP problem of a model: its variables ``x`` (by placement) and constraints (by row)."""

    prob: Any  # pulp.LpProblem
    x: list[Any]  # pulp.LpVariable per placement
    constraints: list[Any]  # pulp.LpConstraint per model row

    def values(self) -> list[float] | None:
        """The 0/1 solution (rounded), or None when the solver left a variable unset."""
        vals = [v.varValue for v in self.x]
        if any(v is None for v in vals):
            return None
        return [1.0 if v > 0.5 else 0.0 for v in vals]


def to_pulp(model: LinearModel, *, name: str = "gpualloc", relax: bool = False,
            minimize: bool = False, objective: bool = True, start: list[float] | None = None,
            prob: Any = None, row_terms: RowTerms | None = None,
            stop: Stop | None = None) -> PulpForm:
    """``model`` as a PuLP problem (see the module doc)."""
    import pulp

    if prob is None:
        prob = pulp.LpProblem(name, pulp.LpMinimize if minimize else pulp.LpMaximize)
    if relax:
        x = [prob.add_variable(f"x{i}", 0, 1) for i in range(model.num_vars)]
    else:
        x = [prob.add_variable(f"x{i}", cat=pulp.LpBinary) for i in range(model.num_vars)]
    if objective:
        sign = -1.0 if minimize else 1.0
        prob.setObjective(pulp.LpAffineExpression(
            [(x[i], sign * c) for i, c in enumerate(model.objective) if c != 0.0]))
    senses = {"<=": pulp.LpConstraintLE, ">=": pulp.LpConstraintGE, "==": pulp.LpConstraintEQ}
    constraints = []
    for k, row in enumerate(model.rows):
        if stop is not None and k % 4096 == 0 and stop.stopped:
            raise StopRequested("translating the model for PuLP", stop.why() or "stopped",
                                f"{k:,} of {len(model.rows):,} rows")
        terms = [(x[i], c) for i, c in zip(row.vars, row.coefs, strict=True)]
        if row_terms is not None:
            terms.extend(row_terms(k))
        con = pulp.LpConstraint(pulp.LpAffineExpression(terms), senses[row.sense], f"r{k}",
                                row.rhs)
        prob.addConstraint(con, f"r{k}")
        constraints.append(con)
    if start is not None:
        for var, v in zip(x, start, strict=True):
            var.setInitialValue(1.0 if v > 0.5 else 0.0)
    return PulpForm(prob, x, constraints)
