"""Supply risks: what may happen to the fleet, each with a probability (DESIGN.md "Risks").

A risks file (YAML or JSON, safe loaders only)::

    risks:
      - name: h20-licence-revoked
        probability: 0.25
        changes: [{kind: pool_gpus, cluster: hz-1, accelerator: H20, add: -2048, from: 14}]

``changes`` take exactly the change kinds of scenario files (``models.scenarios``), parsed and
applied by that module, with the same located errors (``risks[1].changes[0].cluster: unknown
cluster 'x'``). Probabilities are in [0, 1] and sum to at most 1; the base instance is the
``nominal`` case with probability 1 minus that sum. ``cases(base, risks)`` gives the nominal
case and one case per risk, each with its instance ``scenarios.apply(base, risk.changes)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from . import Instance, InstanceError, Issue
from .io import read_mapping
from .scenarios import Change, apply, named_changes

NOMINAL = "nominal"
SUM_TOLERANCE = 1e-9

Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Risk(BaseModel):
    """One thing that may happen to supply, with its probability and its changes."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str | None = None
    probability: Probability
    changes: tuple[Change, ...] = ()


class RiskFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    risks: tuple[Risk, ...]


@dataclass(frozen=True)
class Case:
    """One way the future may go: the nominal instance or one risk's instance."""

    name: str
    probability: float
    instance: Instance
    description: str | None = None


def parse_risks(data: Any, source: str | None = None,
                base: Instance | None = None) -> list[Risk]:
    """Validate a raw mapping ``{risks: [...]}``, reporting every problem at once.

    With ``base``, every risk is also applied to it, so that unknown targets are reported
    together with the file's other problems.
    """
    parsed, candidates, issues = named_changes(data, "risks", RiskFile, Risk, NOMINAL, base)
    total = sum(r.probability for _, r in candidates)
    if total > 1 + SUM_TOLERANCE:
        issues.append(Issue("risks", f"probabilities sum to {total:.6g}; they must sum to at "
                            "most 1 (the nominal case has the rest)"))
    if issues or parsed is None:
        raise InstanceError(issues, source)
    return parsed


def load_risks(path: str | Path, base: Instance | None = None) -> list[Risk]:
    """Read and validate a risks file (YAML or JSON); with ``base``, check the targets."""
    return parse_risks(read_mapping(path, what="risks"), str(path), base)


def nominal_probability(risks: Sequence[Risk]) -> float:
    """1 minus the risks' probabilities (at least 0)."""
    return max(0.0, 1.0 - sum(r.probability for r in risks))


def cases(base: Instance, risks: Sequence[Risk]) -> list[Case]:
    """The nominal case (``base``) first, then one case per risk; all errors raised at once."""
    out = [Case(NOMINAL, nominal_probability(risks), base, "the unchanged instance")]
    issues: list[Issue] = []
    for i, risk in enumerate(risks):
        try:
            inst = apply(base, risk.changes, where=f"risks[{i}].changes")
        except InstanceError as e:
            issues.extend(e.issues)
            continue
        out.append(Case(risk.name, float(risk.probability), inst, risk.description))
    if issues:
        raise InstanceError(issues)
    return out


def first_change_period(risks: Sequence[Risk]) -> int:
    """The earliest period from which any risk changes something (changes without ``from``
    count from period 0); 0 without risks. ``analysis.robust``'s default ``decide_by``."""
    periods = [int(getattr(ch, "from_", None) or 0) for r in risks for ch in r.changes]
    return min(periods, default=0)


__all__ = ["NOMINAL", "Case", "Risk", "RiskFile", "cases", "first_change_period",
           "load_risks", "nominal_probability", "parse_risks"]
