"""Parsing YAML and JSON text safely, with located errors (``models.io`` reads the files).

Nothing in a file is ever executed: YAML goes through safe loaders only, JSON through the
standard parser. YAML is parsed by libyaml (PyYAML's C ``CSafeLoader``) where PyYAML has it,
else by the pure-Python ``SafeLoader``; either way a guarded Python composer refuses, at the
event that crosses a limit and with its line and column: nesting past ``MAX_DEPTH``, a scalar
longer than ``MAX_SCALAR_CHARS``, recursive aliases, and aliases that add more than
``MAX_ALIAS_EXPANSION`` nodes or ``MAX_ALIAS_CHARS`` characters ("billion laughs"). Keys given
twice are errors in both formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import InstanceError, Issue, show_value

MAX_ALIAS_EXPANSION = 1_000_000  # nodes that alias expansion may add to a YAML document
MAX_ALIAS_CHARS = 64 * 2**20  # scalar characters that alias expansion may add
MAX_SCALAR_CHARS = 2**16  # characters in one YAML scalar (ids and names are short)
MAX_DEPTH = 64  # nesting levels (an instance needs 8)


# -- locations --------------------------------------------------------------------------------
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


# -- both -----------------------------------------------------------------------------------
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
