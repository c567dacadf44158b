"""Reading and writing instance files (YAML or JSON), safely and atomically.

Nothing in a file is ever executed: YAML goes through a ``SafeLoader`` subclass (no Python
tags), JSON through the standard parser. Every problem becomes an ``InstanceError`` whose
issues carry a location: a path into the document (``jobs[3].options[0].gpus``) or a position
in the text (``line 4, column 7``). Limits keep hostile input cheap to refuse: only regular
files are read (a FIFO or a device is refused before it is opened for reading), the file size
(``GPUALLOC_MAX_INPUT_MB``, read before the file), the nesting depth, the length of one YAML
scalar, and the nodes and characters that YAML aliases add ("billion laughs"), counted while
composing. YAML is parsed by libyaml (PyYAML's C ``CSafeLoader``) where PyYAML has it, else by
the pure-Python ``SafeLoader``; the guards are the same Python composer either way.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import re
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
from yaml.composer import Composer
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .checks import semantic_issues
from .errors import InstanceError, InstanceWarning, Issue, show_value
from .instance import Instance

DEFAULT_MAX_INPUT_MB = 24  # MiB: a 20,000-job instance is ~6 MiB of YAML, 10 MiB of JSON
MAX_ALIAS_EXPANSION = 1_000_000  # nodes that alias expansion may add to a YAML document
MAX_ALIAS_CHARS = 64 * 2**20  # scalar characters that alias expansion may add
MAX_SCALAR_CHARS = 2**16  # characters in one YAML scalar (ids and names are short)
MAX_DEPTH = 64  # nesting levels (an instance needs 8)


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
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def location(loc: Iterable[Any]) -> str:
    """``('jobs', 3, 'options', 0, 'gpus')`` -> ``jobs[3].options[0].gpus``.

    Keys that are not plain names are quoted: ``jobs[0]['my key']``.
    """
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out += ("." if out else "") + part
        else:
            out += f"[{show_value(part)}]"
    return out


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


# -- YAML -------------------------------------------------------------------------------------
class _LimitError(yaml.MarkedYAMLError):
    """A safety limit was hit while reading YAML."""


class _Guarded(Composer):
    """Composer and constructor guards shared by the libyaml and the pure-Python loaders.

    While composing, each node's expanded size (nodes, height, scalar characters) is known
    as soon as it is finished; an alias adds the size of the node it names. So an alias bomb,
    recursive data, nesting past ``MAX_DEPTH`` (aliases expanded) and over-long scalars are
    refused at the event that crosses the limit, with its mark, in time linear in the text.
    """

    def _start_guards(self) -> None:
        self._open: list[list[int]] = [[0, 0, 0]]  # per open node: its children's sizes
        self._anchored: dict[str, tuple[int, int, int]] = {}  # finished anchored nodes
        self._composing: set[str] = set()  # anchors of nodes still being composed
        self.added = [0, 0]  # nodes and scalar characters that aliases add
        self._tags: dict[str, str] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        event = self.peek_event()  # type: ignore[attr-defined]
        depth = len(self._open)  # this node's level (the root is 1)
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._composing:
                raise _LimitError(None, None, "an alias refers to a node that contains it "
                                  "(recursive data is not allowed)", event.start_mark)
            size = self._anchored.get(event.anchor)
            if size is not None:  # else the composer reports the undefined alias
                self._alias(size, depth, event.start_mark)
            return super().compose_node(parent, index)
        if depth > MAX_DEPTH:
            raise _LimitError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                              event.start_mark)
        anchor = event.anchor
        if isinstance(event, yaml.ScalarEvent):
            if len(event.value) > MAX_SCALAR_CHARS:
                raise _LimitError(None, None, f"a scalar of {len(event.value):,} characters, "
                                  f"over the limit of {MAX_SCALAR_CHARS:,}", event.start_mark)
            if anchor is None and not self.yaml_path_resolvers:  # type: ignore[attr-defined]
                return self._plain_scalar()
        if anchor is not None:
            self._composing.add(anchor)
        self._open.append([0, 0, 0])
        node = super().compose_node(parent, index)
        nodes, height, chars = self._open.pop()
        size = (nodes + 1, height + 1,
                chars + (len(node.value) if isinstance(node, ScalarNode) else 0))
        self._count(size)
        if anchor is not None:
            self._anchored[anchor] = size
            self._composing.discard(anchor)
        return node

    def _plain_scalar(self) -> ScalarNode:
        """The composer's scalar node without its detours (most nodes are scalars)."""
        event = self.get_event()  # type: ignore[attr-defined]
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(ScalarNode, event.value, event.implicit)
        top = self._open[-1]
        top[0] += 1
        top[1] = max(top[1], 1)
        top[2] += len(event.value)
        return ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The resolver's tag, remembered per plain scalar value (the safe resolvers depend
        only on the value: no path resolvers are registered)."""
        if kind is not ScalarNode or not implicit[0]:
            return super().resolve(kind, value, implicit)  # type: ignore[misc]
        tag = self._tags.get(value)
        if tag is None:
            tag = self._tags[value] = super().resolve(kind, value, implicit)  # type: ignore[misc]
        return tag

    def _count(self, size: tuple[int, int, int]) -> None:
        top = self._open[-1]
        top[0] += size[0]
        top[1] = max(top[1], size[1])
        top[2] += size[2]

    def _alias(self, size: tuple[int, int, int], depth: int, mark: Any) -> None:
        nodes, height, chars = size
        if depth - 1 + height > MAX_DEPTH:
            raise _LimitError(None, None, f"nested deeper than {MAX_DEPTH} levels once "
                              "aliases are expanded", mark)
        self.added[0] += nodes
        self.added[1] += chars
        if self.added[0] > MAX_ALIAS_EXPANSION:
            raise _LimitError(None, None, f"aliases expand the document by more than "
                              f"{MAX_ALIAS_EXPANSION:,} nodes: refusing a possible alias bomb "
                              "(\"billion laughs\")", mark)
        if self.added[1] > MAX_ALIAS_CHARS:
            raise _LimitError(None, None, f"aliases expand the document by more than "
                              f"{MAX_ALIAS_CHARS:,} characters: refusing a possible alias bomb",
                              mark)
        self._count(size)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as e:  # e.g. a date 2025-13-45, a 5000-digit number
            shown = node.value if isinstance(node, ScalarNode) else node.tag
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ConstructorError(None, None, f"cannot read {shown!r}: {_reason(e)}",
                                   node.start_mark) from None


class _PyLoader(_Guarded, yaml.SafeLoader):
    """The pure-Python SafeLoader, guarded (used where PyYAML lacks libyaml)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._start_guards()

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # the scanner looks far ahead inside ``[[[[...``: stop it before the composer would
        if self.flow_level >= MAX_DEPTH:
            raise _LimitError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                              self.get_mark())
        super().fetch_flow_collection_start(token_class)  # type: ignore[misc]


if yaml.__with_libyaml__:
    class _CLoader(_Guarded, yaml.CSafeLoader):  # type: ignore[name-defined,misc]
        """libyaml's C parser (``CSafeLoader``) with the guarded Python composer: scanning
        and parsing in C; libyaml itself stops flow nesting at 1000 levels."""

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            Composer.__init__(self)
            self._start_guards()

USE_LIBYAML = bool(yaml.__with_libyaml__)  # read on every load (tests turn it off)


def _reason(e: Exception) -> str:
    text = str(e)
    if "integer string conversion" in text:
        return "a number with too many digits"
    return text


def _mark(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") \
        else tag


def _yaml_error(e: yaml.YAMLError, text: str) -> Issue:
    if isinstance(e, yaml.reader.ReaderError):
        before = text[: e.position]
        line = before.count("\n") + 1
        column = e.position - (before.rfind("\n") + 1) + 1
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        return Issue(f"line {line}, column {column}", f"character {char} is not allowed in "
                     "YAML (control characters must be escaped in double-quoted strings)")
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or "").strip()
        tag = re.search(r"constructor for the tag '([^']*)'", problem)
        if isinstance(e, ConstructorError) and tag:
            return Issue(_mark(mark), f"tag {_short_tag(tag.group(1))!r} is not allowed: "
                         "instance files hold plain data only, nothing in them is executed")
        if isinstance(e, _LimitError):
            return Issue(_mark(mark), problem)
        if "exceeded maximum nesting depth" in problem:  # libyaml's own limit (1000 levels)
            return Issue(_mark(mark), f"nested deeper than {MAX_DEPTH} levels")
        context = (e.context or "").strip()
        what = f"{problem} ({context})" if context and problem else (problem or context)
        return Issue(_mark(mark), f"malformed YAML: {what or e}")
    return Issue("", f"malformed YAML: {e}")


def _duplicate_keys(root: Node) -> list[Issue]:
    """Keys given twice in one YAML mapping (the first would be silently dropped)."""
    issues: list[Issue] = []
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((kid, (*path, k)) for k, kid in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    if key.tag == "tag:yaml.org,2002:merge":
                        continue
                    ident = (key.tag, key.value)
                    if ident in first:
                        issues.append(Issue(
                            location((*path, key.value)),
                            f"duplicate key {show_value(key.value)} at {_mark(key.start_mark)} "
                            f"(first at {_mark(first[ident].start_mark)}); only the last "
                            "would count"))
                    else:
                        first[ident] = key
                    stack.append((value, (*path, key.value)))
                else:
                    stack.append((value, path))
    return issues


_FLOW = re.compile(r"[,\[\]{}]")


def _long_token(text: str) -> int | None:
    """Offset of the first line holding a run of more than ``MAX_SCALAR_CHARS`` characters
    without a flow indicator (``,[]{}``), or None. The pure-Python scanner takes seconds over
    a long scalar, so without libyaml such text is refused before it is parsed; the composer
    checks every scalar's length in any case."""
    pos = 0
    for line in text.split("\n"):
        if len(line) > MAX_SCALAR_CHARS and max(map(len, _FLOW.split(line))) > MAX_SCALAR_CHARS:
            return pos
        pos += len(line) + 1
    return None


def _parse_yaml(text: str) -> tuple[Any, list[Issue]]:
    use_c = USE_LIBYAML
    if not use_c and (at := _long_token(text)) is not None:
        line = text.count("\n", 0, at) + 1
        raise InstanceError([Issue(f"line {line}, column 1", f"a scalar longer than "
                                   f"{MAX_SCALAR_CHARS:,} characters")])
    loader = _CLoader(text) if use_c else _PyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        issues = _duplicate_keys(node)
        return loader.construct_document(node), issues
    except yaml.reader.ReaderError as e:
        if use_c:  # libyaml counts bytes, the messages count characters
            e.position = len(text.encode("utf-8")[: e.position].decode("utf-8", "ignore"))
        raise
    finally:
        loader.dispose()


# -- JSON -------------------------------------------------------------------------------------
def _parse_json(text: str) -> tuple[Any, list[Issue]]:
    # id of an object with repeated keys -> (the object, kept alive so that its id stays
    # unique, and the repeated keys)
    duplicated: dict[int, tuple[dict[str, Any], list[str]]] = {}

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicated.setdefault(id(out), (out, []))[1].append(key)
            out[key] = value
        return out

    data = json.loads(text, object_pairs_hook=pairs)
    if _bracket_depth(text) >= MAX_DEPTH:  # only then is the exact walk worth its time
        _json_depth(data)
    if not duplicated:
        return data, []
    issues: list[Issue] = []  # rare: only now are the paths worth building
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key in duplicated.get(id(node), ({}, []))[1]:
                issues.append(Issue(location((*path, key)), f"duplicate key {show_value(key)}; "
                                    "only the last would count"))
            stack.extend((v, (*path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, k)) for k, v in enumerate(node))
    return data, issues


_NOT_STRUCTURE = bytes(c for c in range(256) if chr(c) not in '"[]{}')
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _bracket_depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, strings left out (at least the data's
    nesting depth plus one; computed in C and numpy, not per value)."""
    import numpy as np

    raw = text.encode("utf-8")
    if b"\\" in raw:  # escapes: strings found by a regular expression
        raw = _JSON_STRING.sub("", text).encode("utf-8")
    codes = np.frombuffer(raw.translate(None, _NOT_STRUCTURE), np.uint8)  # '"[]{}' only
    quote = codes == ord('"')
    outside = (np.cumsum(quote, dtype=np.int32) - quote) % 2 == 0  # not between two quotes
    step = (((codes == ord("[")) | (codes == ord("{"))).astype(np.int32)
            - ((codes == ord("]")) | (codes == ord("}"))))
    step[~outside] = 0
    return int(np.cumsum(step).max()) if len(step) else 0


def _json_depth(data: Any) -> None:
    """Refuse JSON data with a value ``MAX_DEPTH`` levels down (the root is level 0), located
    at its top-level key; only containers are visited, level by level."""
    level: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    for depth in range(MAX_DEPTH):
        nxt: list[tuple[Any, tuple[Any, ...]]] = []
        for node, top in level:
            items = node.items() if isinstance(node, dict) else enumerate(node) \
                if isinstance(node, list) else ()
            for key, value in items:
                if depth == MAX_DEPTH - 1:  # a value at level MAX_DEPTH
                    raise InstanceError([Issue(location(top or (key,)),
                                               f"nested deeper than {MAX_DEPTH} levels")])
                if isinstance(value, dict | list):
                    nxt.append((value, top or (key,)))
        if not nxt:
            return
        level = nxt


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


def _parse(text: str, source: str, fmt: str | None) -> tuple[Any, list[Issue]]:
    fmt = fmt or ("json" if source.lower().endswith(".json") else "yaml")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InstanceError([Issue("", "the file is empty")], source)
    try:
        if fmt == "json":
            return _parse_json(text)
        return _parse_yaml(text)
    except json.JSONDecodeError as e:
        raise InstanceError([Issue(f"line {e.lineno}, column {e.colno}",
                                   f"malformed JSON: {e.msg}")], source) from None
    except yaml.YAMLError as e:
        raise InstanceError([_yaml_error(e, text)], source) from None
    except RecursionError:  # the JSON parser recursed too deep (YAML is refused earlier)
        where = _too_deep(text) if fmt == "json" else ""
        raise InstanceError([Issue(where, f"nested deeper than {MAX_DEPTH} levels")],
                            source) from None
    except InstanceError as e:
        raise InstanceError(e.issues, source) from None
    except (ValueError, TypeError, OverflowError) as e:
        # e.g. a JSON number with more digits than Python converts
        where = ""
        digits = re.search(r"\d{1000,}", text)
        if "integer string conversion" in str(e) and digits:
            line = text.count("\n", 0, digits.start()) + 1
            where = f"line {line}, column {digits.start() - text.rfind(chr(10), 0, digits.start())}"
        raise InstanceError([Issue(where, f"malformed {fmt.upper()}: {_reason(e)}")],
                            source) from None


def _too_deep(text: str) -> str:
    """``line L, column C`` of the bracket that nests JSON text past ``MAX_DEPTH`` (or '')."""
    depth = 0
    in_string = escaped = False
    for pos, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, pos) + 1
                return f"line {line}, column {pos - text.rfind(chr(10), 0, pos)}"
        elif char in "]}":
            depth -= 1
    return ""


def parse_text(text: str, source: str, fmt: str | None = None) -> Any:
    """Parse YAML or JSON text (safe loaders only) or raise a located InstanceError."""
    data, issues = _parse(text, source, fmt)
    if issues:
        raise InstanceError(issues, source)
    return data


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
