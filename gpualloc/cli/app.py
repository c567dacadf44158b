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


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1e6:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


# -- solve ------------------------------------------------------------------------------------
InstanceArg = Annotated[Path | None, typer.Argument(help="Instance file (YAML or JSON); "
                                                         f"default {DEFAULT_INSTANCE}.")]


def main() -> None:  # pragma: no cover - console entry
    app()
