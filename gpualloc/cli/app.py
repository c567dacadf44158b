"""Command-line interface: a thin Typer + Rich shell over the library.

Exit codes: 0 success (a plan was found / the plan is valid), 1 no plan (infeasible or none
found in time) or an invalid plan, 2 bad input or usage, 130 interrupted (best plan written).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from .. import models, optimizer
from ..models import Instance, InstanceError
from ..models.io import SYSTEM_FOLDERS

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
    except optimizer.ModelTooLarge as e:
        fail(f"{escape(str(e))} (see --max-memory)")


@contextmanager
def output_errors(path: Path | None = None) -> Iterator[None]:
    """A write that fails (full disk, permissions) becomes one line and exit code 2:
    ``cannot write [path]: reason``."""
    try:
        yield
    except OSError as e:
        fail(f"cannot write{'' if path is None else f' {path}'}: {e.strerror or e}")


def process_age() -> float:
    """Seconds since this process started: the interpreter's start and the imports, which a
    ``--time-limit`` covers too (Linux ``/proc``, to 10 ms; elsewhere 0)."""
    import time

    try:
        with open("/proc/self/stat", "rb") as fh:
            stat_line = fh.read()
        start_ticks = int(stat_line[stat_line.rindex(b")") + 2:].split()[19])  # field 22
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        return max(0.0, now - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def memory_limit(text: str) -> int | None:
    """``--max-memory``: 'auto' (0.6 x MemAvailable, None where unknown), 'none', or a size."""
    from ..optimizer.model.estimate import default_memory_limit, memory_from_text

    if text.strip().lower() == "auto":
        return default_memory_limit()
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return memory_from_text(text)
    except ValueError:
        fail(f"--max-memory: {escape(text)!r} is not a size (8G, 512M, bytes, auto or none)")


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


BACKEND_HELP = ("Solver: cpsat, cbc, highs, interval or greedy (the last two are heuristics: "
                "their plans' bound is the trivial one, every job at its best placement).")
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Use a plan file even when it names another instance.")]
# -- output paths -----------------------------------------------------------------------------
_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_writable(path: Path | None, what: str, folder: bool = False) -> None:
    """Before any work: exit 2 with one line unless ``path`` (a file, or with ``folder`` a
    folder) can be written the way the atomic writer writes (a new file in its folder, then
    a rename). Refused: a directory given for a file, a path under a non-directory, a special
    file (FIFO, device) or a link to one, anything under ``/dev``, ``/proc`` or ``/sys``, a
    folder where no file can be created (read-only)."""
    if path is None:
        return
    reason = unwritable(path, folder)
    if reason is not None:
        fail(f"cannot write {what} to {escape(str(path))}: {escape(reason)}")


def unwritable(path: Path, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written (None when it can); nothing is left behind."""
    try:
        info: os.stat_result | None = path.lstat()
    except FileNotFoundError:
        info = None
    except OSError as e:  # e.g. "Not a directory": some parent is a file
        return _parent_problem(path) or e.strerror or str(e)
    if info is not None and stat.S_ISDIR(info.st_mode) and not folder:
        return "it is a directory"
    if info is not None and folder and not stat.S_ISDIR(info.st_mode):
        return "it is a file, not a folder"
    kind = next((name for test, name in _SPECIAL if info is not None and test(info.st_mode)),
                None)
    if kind is not None:
        return f"it is {kind}, not a regular file"
    if info is not None and stat.S_ISLNK(info.st_mode) and not folder:
        try:  # /dev/stdout: replacing the link would break it; writing through is not atomic
            target = path.stat().st_mode
        except OSError:
            target = None
        kind = next((name for test, name in (*_SPECIAL, (stat.S_ISDIR, "a directory"))
                     if target is not None and test(target)), None)
        if kind is not None:
            return f"it links to {kind}, not to a regular file"
    for place in (path.absolute(), path.resolve()):  # the path, and where a link leads
        system = next((root for root in SYSTEM_FOLDERS
                       if root == place or root in place.parents), None)
        if system is not None:  # /dev/stdout: the rename would replace the device link
            return f"it is under {system}, a system folder"
    where = path if folder and info is not None else path.parent
    while not where.exists() and where != where.parent:
        where = where.parent  # the folders missing on the way are created when writing
    if not where.is_dir():
        return f"{where} is not a directory"
    try:
        fd, probe = tempfile.mkstemp(prefix=".gpualloc-probe-", dir=where)
    except OSError as e:
        return f"no file can be created in {where} ({e.strerror or e})"
    os.close(fd)
    os.unlink(probe)
    return None


def _parent_problem(path: Path) -> str | None:
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is not a directory"
    return None


def write_or_rescue(write: Callable[[Path], None], path: Path, what: str) -> bool:
    """``write(path)``; when that fails all the same (the disk filled up, the folder went),
    write to a fresh file in the temporary folder instead and say where, in one line each.
    False when ``path`` was not written."""
    try:
        write(path)
        return True
    except OSError as e:
        reason = e.strerror or str(e)
    try:
        fd, spare = tempfile.mkstemp(prefix=f"gpualloc-{path.stem or 'out'}-",
                                     suffix=path.suffix)
        os.close(fd)
        write(Path(spare))
    except OSError:
        err.print(f"[red]error:[/red] cannot write {what} to {escape(str(path))} "
                  f"({escape(reason)}); it was not saved", soft_wrap=True)
    else:
        err.print(f"[red]error:[/red] cannot write {what} to {escape(str(path))} "
                  f"({escape(reason)}); written to {escape(spare)} instead", soft_wrap=True)
    return False


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
