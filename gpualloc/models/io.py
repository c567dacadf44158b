"""Reading and writing instance files (YAML or JSON), safely and atomically."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .checks import semantic_issues
from .errors import InstanceError, InstanceWarning, Issue
from .instance import Instance

MAX_INPUT_BYTES = int(os.environ.get("GPUALLOC_MAX_INPUT_MB", "64")) * 1024 * 1024
MAX_ALIASES = 10_000
MAX_DEPTH = 64


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that refuses alias bombs (too many alias expansions)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (line {mark.line + 1}): "
                                     "refusing a possible alias bomb")
        return super().compose_node(parent, index)


def location(loc: tuple[Any, ...]) -> str:
    """``('jobs', 3, 'options', 0, 'gpus')`` -> ``jobs[3].options[0].gpus``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_issues(error: ValidationError) -> list[Issue]:
    """pydantic errors as located issues."""
    issues = []
    for e in error.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] not in ("missing", "extra_forbidden") and "input" in e:
            shown = repr(e["input"])
            if len(shown) <= 60:
                msg += f" (got {shown})"
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        issues.append(Issue(location(loc), msg))
    return issues


def _depth(obj: Any, limit: int) -> int:
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(node, Mapping):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, d + 1) for v in node)
    return deepest


def parse_text(text: str, source: str, fmt: str | None = None) -> Any:
    """Parse YAML or JSON text (safe loaders only) or raise a located InstanceError."""
    fmt = fmt or ("json" if source.lower().endswith(".json") else "yaml")
    try:
        if fmt == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_GuardedLoader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as e:
        raise InstanceError([Issue(f"line {e.lineno}, column {e.colno}",
                                   f"malformed JSON: {e.msg}")], source) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = (e.problem or str(e)).strip()
        raise InstanceError([Issue(where, f"malformed YAML: {what}")], source) from None
    except yaml.YAMLError as e:
        raise InstanceError([Issue("", f"malformed YAML: {e}")], source) from None
    except RecursionError:
        raise InstanceError([Issue("", "input nested too deeply")], source) from None


def read_mapping(path: str | Path, what: str = "instance") -> dict[str, Any]:
    """Read a YAML/JSON file into a mapping, with size, depth and safety limits."""
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InstanceError([Issue("", f"cannot read {what} file: {e.strerror}")], source) from None
    if size > MAX_INPUT_BYTES:
        raise InstanceError([Issue("", f"file is {size / 2**20:.1f} MiB, over the "
                                   f"{MAX_INPUT_BYTES / 2**20:.0f} MiB input limit "
                                   "(set GPUALLOC_MAX_INPUT_MB to raise it)")], source)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InstanceError([Issue(f"byte {e.start}", "file is not UTF-8 text")], source) from None
    except OSError as e:
        raise InstanceError([Issue("", f"cannot read {what} file: {e.strerror}")], source) from None
    data = parse_text(text, source)
    if _depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise InstanceError([Issue("", f"input nested deeper than {MAX_DEPTH} levels")], source)
    if not isinstance(data, Mapping):
        raise InstanceError([Issue("", f"the {what} must be a mapping at the top level, "
                                   f"got {type(data).__name__}")], source)
    return dict(data)


def instance_from_mapping(data: Mapping[str, Any], source: str | None = None) -> Instance:
    """Validate a raw mapping into an Instance, reporting every problem at once.

    Warnings (legal but suspicious input) are issued as ``InstanceWarning``.
    """
    try:
        instance = Instance.model_validate(data)
    except ValidationError as e:
        found = validation_issues(e)
        try:
            found += [i for i in semantic_issues(data) if i.severity == "error"]
        except Exception:  # noqa: BLE001 - the type errors above are the real report
            pass
        raise InstanceError(found, source) from None
    except InstanceError as e:
        raise InstanceError(e.issues, source) from None
    except RecursionError:
        raise InstanceError([Issue("", "input nested too deeply")], source) from None
    for issue in semantic_issues(data):
        if issue.severity == "warning":
            warnings.warn(f"{source + ': ' if source else ''}{issue}", InstanceWarning,
                          stacklevel=2)
    return instance


def load_instance(path: str | Path) -> Instance:
    """Load and validate an instance from a YAML or JSON file."""
    return instance_from_mapping(read_mapping(path), str(path))


def dump_model(model: BaseModel, path: str | Path) -> str:
    """Serialise a model as YAML or JSON text, chosen by the file suffix."""
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    if str(path).lower().endswith(".json"):
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def save_instance(instance: Instance, path: str | Path) -> None:
    """Write an instance as YAML or JSON (by suffix), atomically."""
    atomic_write_text(path, dump_model(instance, path))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
