"""Reading and writing instance files (YAML or JSON), safely and atomically.

Nothing in a file is ever executed (parsing: ``models.parsing``, safe loaders only). Every
problem becomes an ``InstanceError`` whose issues carry a location: a path into the document
(``jobs[3].options[0].gpus``) or a position in the text (``line 4, column 7``). Limits keep
hostile input cheap to refuse: only regular files are read (a FIFO or a device is refused
before it is opened for reading), the file size (``GPUALLOC_MAX_INPUT_MB``, read before the
file), and the parser's limits (nesting, scalar length, alias expansion). Files are written
atomically, with ordinary permissions (``atomic_write_bytes``).
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import json
import math
import os
import stat
import sys
import tempfile
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .checks import semantic_issues
from .errors import InstanceError, InstanceWarning, Issue, show_value
from .instance import Instance
from .parsing import MAX_ALIAS_CHARS as MAX_ALIAS_CHARS  # re-exported: callers import the
from .parsing import MAX_ALIAS_EXPANSION as MAX_ALIAS_EXPANSION  # limits and helpers from here
from .parsing import MAX_DEPTH as MAX_DEPTH
from .parsing import MAX_SCALAR_CHARS as MAX_SCALAR_CHARS
from .parsing import _parse
from .parsing import location as location
from .parsing import parse_text as parse_text

DEFAULT_MAX_INPUT_MB = 24  # MiB: a 20,000-job instance is ~6 MiB of YAML, 10 MiB of JSON


def max_input_bytes() -> int:
    """The input size limit: ``GPUALLOC_MAX_INPUT_MB`` (MiB, default 24), read on every call."""
    raw = os.environ.get("GPUALLOC_MAX_INPUT_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_MB * 2**20
    try:
        mb = float(raw)
    except ValueError:
        mb = math.nan
    if not math.isfinite(mb) or mb <= 0:
        raise InstanceError([Issue("", f"GPUALLOC_MAX_INPUT_MB={raw!r} is not a positive "
                                   "number of MiB")])
    return int(mb * 2**20)


def _initial_limit() -> int:
    try:
        return max_input_bytes()
    except InstanceError:
        return DEFAULT_MAX_INPUT_MB * 2**20


# The limit when the module was imported (kept for callers that import the constant);
# the loaders here read the environment again on every call.
MAX_INPUT_BYTES = _initial_limit()


# -- locations and messages -------------------------------------------------------------------
_REWRITES = {
    "missing": "missing required key",
    "model_type": "should be a mapping (key: value pairs)",
    "model_attributes_type": "should be a mapping (key: value pairs)",
    "dict_type": "should be a mapping (key: value pairs)",
    "tuple_type": "should be a list",
    "list_type": "should be a list",
}


def _model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The schema model that holds the last key of ``loc`` (for 'did you mean' hints)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is None:
            return None
        field = next((f for n, f in model.model_fields.items()
                      if part in (n, f.alias)), None)
        if field is None:
            return None
        model = _find_model(field.annotation)
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _unknown_key(loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    msg = "unknown key"
    model = _model_at(loc, root) if loc else None
    if model is not None and isinstance(loc[-1], str):
        names = [f.alias or n for n, f in model.model_fields.items()]
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        else:
            msg += f" (expected one of: {', '.join(names)})"
    return msg


def validation_issues(error: ValidationError, root: type[BaseModel] | None = None) -> list[Issue]:
    """pydantic errors as located issues, in plain words with the offending value.

    Exactly one issue per ``error.errors()`` entry, in the same order (callers zip them).
    ``root`` is the validated model, for 'did you mean' hints on unknown keys (by default
    only for ``Instance``; other callers get a plain 'unknown key').
    """
    root = root or _root_model(error)
    issues = []
    for e in error.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = e["type"]
        msg = e["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if kind == "extra_forbidden":
            msg = _unknown_key(loc, root) if root else "unknown key"
        elif kind == "missing" and loc and isinstance(loc[-1], int):
            msg = "missing item"
        elif kind == "float_type" and isinstance(e.get("input"), int) \
                and not isinstance(e.get("input"), bool):
            msg = "Input is too large to be a number"  # beyond a float's range
        elif kind in _REWRITES:
            msg = _REWRITES[kind]
            if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
                msg = "the top level " + msg
            else:
                msg = "Input " + msg if kind != "missing" else msg
        value = e.get("input")
        model_level = kind in ("value_error", "assertion_error") and isinstance(
            value, Mapping | list | tuple)
        if kind not in ("missing", "extra_forbidden") and "input" in e and not model_level:
            msg += f" (got {show_value(value)})"
            if isinstance(value, str) and kind in ("int_type", "float_type") \
                    and _looks_numeric(value):
                msg += "; write numbers without quotes"
        issues.append(Issue(location(loc), msg))
    return issues


def _root_model(error: ValidationError) -> type[BaseModel] | None:
    """The instance model when it is the one that failed (other callers pass ``root``)."""
    return Instance if error.title == Instance.__name__ else None


def _looks_numeric(text: str) -> bool:
    """'4' or '2.5' (a number in quotes), not 'nan' or 'inf'."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# -- files ------------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date | datetime):
        return "a date"
    return f"a {type(value).__name__}"


def _human(nbytes: int) -> str:
    if nbytes < 2**10:
        return f"{nbytes} bytes"
    if nbytes < 2**20:
        return f"{nbytes / 2**10:.1f} KiB"
    if nbytes < 2**30:
        return f"{nbytes / 2**20:.1f} MiB"
    return f"{nbytes / 2**30:.1f} GiB"


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _regular(mode: int, what: str, source: str) -> None:
    """Refuse anything but a regular file, naming what it is."""
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InstanceError([Issue("", f"cannot read {what} file: it is {kind}, not a regular "
                               "file")], source)


def _read_text(path: Path, what: str) -> str:
    source = str(path)
    limit = max_input_bytes()
    over = (f"over the {_human(limit)} input limit (set GPUALLOC_MAX_INPUT_MB to "
            "raise it)")
    try:
        _regular(os.stat(path).st_mode, what, source)  # a FIFO is never opened for reading
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            _regular(info.st_mode, what, source)  # swapped for another kind since the stat
            if info.st_size > limit:
                raise InstanceError([Issue("", f"file is {_human(info.st_size)}, {over}")],
                                    source)
            raw = fh.read(limit + 1)  # a file may grow while it is read
    except OSError as e:
        reason = e.strerror or str(e)
        raise InstanceError([Issue("", f"cannot read {what} file: {reason}")], source) from None
    if len(raw) > limit:
        raise InstanceError([Issue("", f"file is {over}")], source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        extra = ""
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            extra = "; it looks like UTF-16, save it as UTF-8"
        raise InstanceError([Issue(f"line {line}, column {column}",
                                   f"file is not UTF-8 text (byte 0x{raw[e.start]:02x}){extra}")],
                            source) from None


def _load(path: str | Path, what: str) -> tuple[dict[str, Any], list[Issue]]:
    path = Path(path)
    source = str(path)
    data, issues = _parse(_read_text(path, what), source, None)
    if not isinstance(data, Mapping):
        if data is None:
            raise InstanceError([Issue("", f"the file holds no {what} (only comments or null)")],
                                source)
        raise InstanceError([Issue("", f"the {what} must be a mapping (key: value pairs) at the "
                                   f"top level, got {_kind(data)}")], source)
    return dict(data), issues


def read_mapping(path: str | Path, what: str = "instance") -> dict[str, Any]:
    """Read a YAML/JSON file into a mapping, with size, depth and safety limits."""
    data, issues = _load(path, what)
    if issues:
        raise InstanceError(issues, str(path))
    return data


def _outside_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` that points at the first caller outside this file."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def instance_from_mapping(data: Mapping[str, Any], source: str | None = None, *,
                          issues: Iterable[Issue] = ()) -> Instance:
    """Validate a raw mapping into an Instance, reporting every problem at once.

    ``issues`` are problems already found in the same input (e.g. duplicate keys while
    parsing); their errors are reported together with the rest. Warnings (legal but
    suspicious input) are issued as ``InstanceWarning``.
    """
    given = list(issues)
    prior = [i for i in given if i.severity == "error"]
    try:
        instance = Instance.model_validate(data)
    except ValidationError as e:
        found = validation_issues(e, Instance)
        with contextlib.suppress(Exception):  # the type errors above are the real report
            found += [i for i in semantic_issues(data) if i.severity == "error"]
        raise InstanceError(prior + found, source) from None
    except InstanceError as e:
        raise InstanceError(prior + e.issues, source) from None
    except RecursionError:
        raise InstanceError([*prior, Issue("", f"nested deeper than {MAX_DEPTH} levels")],
                            source) from None
    except Exception as e:  # the contract: bad input never gives a traceback
        raise InstanceError([*prior, Issue("", f"cannot validate the instance: "
                                           f"{type(e).__name__}: {e}")], source) from None
    if prior:
        raise InstanceError(prior, source)
    found = [i for i in given if i.severity == "warning"]
    with contextlib.suppress(Exception):  # warnings are advice; the instance is valid
        found += [i for i in semantic_issues(data) if i.severity == "warning"]
    level = _outside_stacklevel()
    for issue in found:
        warnings.warn(f"{source + ': ' if source else ''}{issue}", InstanceWarning,
                      stacklevel=level)
    return instance


def load_instance(path: str | Path) -> Instance:
    """Load and validate an instance from a YAML or JSON file (chosen by the suffix)."""
    data, issues = _load(path, "instance")
    return instance_from_mapping(data, str(path), issues=issues)


# -- writing ----------------------------------------------------------------------------------
def dump_model(model: BaseModel, path: str | Path) -> str:
    """Serialise a model as YAML or JSON text, chosen by the file suffix."""
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    if str(path).lower().endswith(".json"):
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml if present: same text, faster
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)


def save_instance(instance: Instance, path: str | Path) -> None:
    """Write an instance as YAML or JSON (by suffix), atomically; it reloads equal."""
    atomic_write_text(path, dump_model(instance, path))


NEW_FILE_MODE = 0o644  # new output files, under the umask


def _umask() -> int:
    """The process umask, read without changing it where the OS shows it (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """The mode of the file written at ``path``: an existing regular file's permission bits
    (never its setuid, setgid or sticky bits), else ``NEW_FILE_MODE`` under the umask. A
    symlink is replaced by a new file: its target's mode is not copied."""
    try:
        info = path.lstat()
    except OSError:
        info = None
    if info is not None and stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode) & 0o777
    return NEW_FILE_MODE & ~_umask()


SYSTEM_FOLDERS = (Path("/dev"), Path("/proc"), Path("/sys"))


def _replaceable(path: Path) -> None:
    """Raise ``OSError`` where a rename would do harm: under ``/dev``, ``/proc`` or ``/sys``
    (``/dev/stdout`` is a link the rename would replace), or over a directory, a FIFO or a
    device (reached through a link or not)."""
    where = path.absolute()
    if any(root == where or root in where.parents for root in SYSTEM_FOLDERS):
        raise OSError(errno.EPERM, "not writing under a system folder", str(path))
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see ``atomic_write_bytes``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    Readers see the old file or the new one, never a part. A new file gets ``0o644`` under the
    umask (not the temporary file's private 0600), a replaced regular file keeps its
    permission bits, and no setuid, setgid or sticky bit is ever set (see ``_new_file_mode``).
    """
    path = Path(path)
    _replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
