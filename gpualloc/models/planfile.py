"""Plan files: read and write the JSON plan (DESIGN.md "Plan file"), with metrics as extras."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import InstanceError
from .instance import Instance
from .io import atomic_write_text, read_mapping, validation_issues
from .metrics import plan_metrics
from .plan import Plan


def plan_to_dict(plan: Plan, instance: Instance | None = None) -> dict[str, Any]:
    """The plan file content; with the instance, metrics are added as extra keys."""
    data = plan.model_dump(mode="json")
    if instance is not None:
        data["metrics"] = plan_metrics(instance, plan)
    return data


def save_plan(plan: Plan, path: str | Path, instance: Instance | None = None) -> None:
    """Write a plan file (JSON) atomically."""
    atomic_write_text(path, json.dumps(plan_to_dict(plan, instance), indent=2) + "\n")


def load_plan(path: str | Path) -> Plan:
    """Read a plan file, raising a located InstanceError when it is malformed."""
    data = read_mapping(path, what="plan")
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        raise InstanceError(validation_issues(e), str(path)) from None
