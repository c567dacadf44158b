"""Command-line interface: a thin Typer + Rich shell over the library.

Exit codes: 0 success (a plan was found / the plan is valid), 1 no plan (infeasible or none
found in time) or an invalid plan, 2 bad input or usage, 130 interrupted (best plan written).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from .. import models, optimizer
from ..models import Instance, InstanceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Share scarce AI accelerators among portfolio start-ups, with a proven "
                       "bound on how far from optimal the plan can be.")
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_NO_PLAN = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

DEFAULT_INSTANCE = "instances/portfolio.yaml"


def default_instance() -> Path:
    """``instances/portfolio.yaml`` here, else the copy shipped with the package."""
    for candidate in (Path.cwd() / DEFAULT_INSTANCE,
                      Path(__file__).resolve().parents[1] / "_instances" / "portfolio.yaml",
                      Path(__file__).resolve().parents[2] / DEFAULT_INSTANCE):
        if candidate.is_file():
            return candidate
    fail(f"no instance given and {DEFAULT_INSTANCE} not found")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def report_input_error(e: InstanceError) -> NoReturn:
    err.print(f"[red]error:[/red] {e.source or 'input'}: {len(e.issues)} problem(s)")
    for issue in e.issues:
        err.print(f"  {issue}", markup=False)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def input_errors() -> Iterator[None]:
    """Bad files become located messages and exit code 2, never a traceback."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", models.InstanceWarning)
            yield
        for w in caught:
            if issubclass(w.category, models.InstanceWarning):
                err.print(f"[yellow]warning:[/yellow] {w.message}", markup=True)
    except InstanceError as e:
        report_input_error(e)
    except optimizer.BackendUnavailable as e:
        fail(str(e))


def load(path: Path | None) -> Instance:
    with input_errors():
        return models.load_instance(path or default_instance())


def load_plan_for(path: Path, inst: Instance, force: bool = False) -> models.Plan:
    """Load a plan file meant for ``inst``: a plan naming another instance is refused with one
    line and exit 2 (``--force`` turns that into a warning)."""
    with input_errors():
        plan = models.load_plan(path)
    if plan.instance != inst.name:
        message = f"plan is for {plan.instance!r}, not {inst.name!r}"
        if not force:
            fail(f"{path}: {message} (--force to use it anyway)")
        err.print(f"[yellow]warning:[/yellow] {path}: {message}", markup=True)
    return plan


BACKEND_HELP = ("Solver: cpsat, cbc, highs or greedy (a heuristic that proves nothing itself: "
                "its plan's bound is the trivial one, every job at its best placement).")
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Use a plan file even when it names another instance.")]


def fmt(x: float | None, digits: int = 2) -> str:
    """A number for the console (``present.format``: separators, no -0, no e-notation)."""
    from ..present.format import num

    if x is not None and abs(x) >= 1e6:
        digits = 0
    return num(x, digits)


def pct(x: float | None) -> str:
    from ..present.format import pct as percent

    return percent(x)


# -- solve ------------------------------------------------------------------------------------
InstanceArg = Annotated[Path | None, typer.Argument(help="Instance file (YAML or JSON); "
                                                         f"default {DEFAULT_INSTANCE}.")]


def main() -> None:  # pragma: no cover - console entry
    app()
