"""The neutral linear model: built once from an Instance, shared by every backend and strategy."""

from .formulation import LinearModel, Placement, Row, build

__all__ = ["LinearModel", "Placement", "Row", "build"]
