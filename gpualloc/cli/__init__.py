"""Command-line interface: a thin Typer + Rich shell over the library, one module per group.

``app`` and the shared console helpers live in ``app``; each command module registers its
commands on it. The library never imports this package.
"""

from . import core, pareto, replan, reports, robust, scale, studies  # noqa: F401  (register)
from .app import app, main

__all__ = ["app", "main"]
