"""Fuzz the input files through the CLI: every bad file is a located error and exit code 2.

Run the large harness (kept out of the default test run) with::

    python tests/fuzz/fuzz_inputs.py --cases 10000 [--seed 0] [--jobs-out failures/]

``tests/test_fuzz_inputs.py`` runs a small sample of the same cases in the default run.

A case is a file (YAML or JSON, by suffix) built from a valid instance or plan and then
mutated: wrong types, missing keys, huge numbers (1e308, 10**400), NaN and infinities, unicode
ids, deep nesting, duplicate and unknown keys, dangling references; or mangled as text: truncated,
spliced, byte-flipped, binary garbage, empty, a BOM, UTF-16, alias bombs, ``!!python/...`` tags
that would run a shell command, other tags, several documents. Each case goes through
``typer.testing.CliRunner`` as ``gpualloc validate INSTANCE PLAN`` or
``gpualloc solve INSTANCE --backend greedy``, and must

- never raise (no traceback in the output) and never hang (a per-case time limit);
- exit 2 exactly when the library refuses the file (``InstanceError``), with the file named and
  every problem printed; each problem carries a location (a path into the document or a line and
  column), except problems of the file as a whole (empty, too large, not text, not a mapping);
- exit 0 or 1 when the (mutated) file is still valid;
- never execute anything (the tag cases would create a marker file).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``gpualloc`` and ``tests`` importable
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from gpualloc import optimizer  # noqa: E402
from gpualloc.cli import app  # noqa: E402
from gpualloc.models import Instance, InstanceError, load_instance, load_plan  # noqa: E402
from gpualloc.models.planfile import plan_to_dict  # noqa: E402

# Problems that concern the file as a whole: no location to give.
WHOLE_FILE = ("the file is empty", "file is ", "the file holds no", "the instance must be",
              "the plan must be", "cannot read", "the top level")
PER_CASE_SECONDS = 20.0  # a case slower than this is a hang
MARKER = "gpualloc-fuzz-pwned"


# -- the valid documents mutations start from -------------------------------------------------
def _json_copy(data: Any) -> Any:
    return json.loads(json.dumps(data))


def instance_document(instance: Instance) -> dict[str, Any]:
    """An instance as a plain mapping, as a user would write it."""
    return _json_copy(instance.model_dump(mode="json", by_alias=True, exclude_none=True))


def base_cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(instance document, plan document) pairs: small random instances using every feature,
    and a plan for each (greedy: fast, and valid)."""
    from tests.strategies import random_instance

    out = []
    for seed in range(6):
        instance = random_instance(seed)
        plan = optimizer.solve(instance, "greedy", time_limit=5)
        out.append((instance_document(instance), _json_copy(plan_to_dict(plan))))
    return out


# -- structural mutations ---------------------------------------------------------------------
WRONG_TYPES: tuple[Any, ...] = ("x", "", "12", "1e3", "true", [], [1, 2], {}, {"a": 1}, True,
                                False, None, 0, -1, 1.5, -0.0)
HUGE: tuple[Any, ...] = (1e308, -1e308, 10**400, -(10**400), 2**63, 2**64 + 1, 10**30, 1e-320,
                         5e-324, 1.7976931348623157e308, 10**4000)
NON_FINITE: tuple[Any, ...] = (math.nan, math.inf, -math.inf)
UNICODE: tuple[str, ...] = ("ジョブ-1", "\u202eevil", "a\u0000b", "💥", "e\u0301", "\u200b",
                            "ǅ", "x" * 10_000, "\ud800", "line\nbreak", "tab\there", "[red]x[/red]",
                            "ﬁ", "İ", "\U0010ffff", " ", "\x1b[31m", "../../etc/passwd",
                            "{{x}}", "%s%n", "\\u0000")


def _paths(doc: Any, max_depth: int = 12) -> list[tuple[Any, ...]]:
    """Paths to every node of ``doc`` down to ``max_depth`` (not into deep mutations)."""
    out: list[tuple[Any, ...]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        out.append(path)
        if len(path) >= max_depth:
            continue
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, k)) for k, v in enumerate(node))
    return sorted(out, key=lambda p: [str(x) for x in p])


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _nested(depth: int, leaf: Any = 1) -> Any:
    out = leaf
    for _ in range(depth):
        out = [out]
    return out


def mutate_document(doc: Any, rng: random.Random) -> tuple[Any, list[str]]:
    """1-3 random structural mutations of a copy of ``doc``; also returns what was done."""
    doc = copy.deepcopy(doc)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = _paths(doc)
        path = rng.choice(paths[1:] or paths)
        value = _get(doc, path)
        kind = rng.choice(("type", "type", "delete", "delete", "huge", "nonfinite", "unicode",
                           "nest", "dup", "unknown", "ref", "negative", "fraction", "empty",
                           "many", "container"))
        if kind == "type":
            doc = _set(doc, path, copy.deepcopy(rng.choice(WRONG_TYPES)))
        elif kind == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif kind == "huge":
            doc = _set(doc, path, rng.choice(HUGE))
        elif kind == "nonfinite":
            doc = _set(doc, path, rng.choice(NON_FINITE))
        elif kind == "unicode":
            doc = _set(doc, path, rng.choice(UNICODE))
        elif kind == "nest":  # the last mutation: deeper text nesting is in ``hostile``
            doc = _set(doc, path, _nested(rng.choice((8, 62, 63, 64, 65, 300)),
                                          copy.deepcopy(value)))
            done.append(f"{kind}@{'/'.join(map(str, path))}"[:120])
            break
        elif kind == "dup" and path and isinstance(_get(doc, path[:-1]), list):
            _get(doc, path[:-1]).append(copy.deepcopy(value))
        elif kind == "unknown" and isinstance(value, dict):
            value[rng.choice(("bogus", "Jobs", "opitons", "", "🙂", "1"))] = 1
        elif kind == "ref" and isinstance(value, str):
            doc = _set(doc, path, rng.choice(("nope", value + "x", value.upper(), "H900")))
        elif kind == "negative" and isinstance(value, int | float) \
                and not isinstance(value, bool):
            doc = _set(doc, path, -value - 1)
        elif kind == "fraction" and isinstance(value, int) and not isinstance(value, bool):
            doc = _set(doc, path, value + 0.5)
        elif kind == "empty" and isinstance(value, list | dict):
            doc = _set(doc, path, type(value)())
        elif kind == "many" and isinstance(value, list) and value:
            doc = _set(doc, path, [copy.deepcopy(rng.choice(value))
                                   for _ in range(rng.choice((2, 50, 300)))])
        elif kind == "container" and isinstance(value, dict):
            doc = _set(doc, path, list(value.values()))
        else:
            continue
        done.append(f"{kind}@{'/'.join(map(str, path))}"[:120])
    return doc, done


# -- serialising and text mutations -----------------------------------------------------------
def serialise(doc: Any, suffix: str, rng: random.Random) -> bytes:
    """YAML or JSON text of ``doc`` (JSON writes NaN/Infinity literals, as Python does)."""
    if suffix == ".json":
        text = json.dumps(doc, indent=rng.choice((None, 2)), ensure_ascii=rng.random() < 0.5)
    else:
        try:
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=rng.random() < 0.5,
                                  default_flow_style=rng.choice((False, None)))
        except (yaml.YAMLError, RecursionError, UnicodeEncodeError):
            text = json.dumps(doc)  # JSON is YAML too
    return text.encode("utf-8", "surrogatepass")


YAML_NOISE = ":-[]{}&*!|>'\"#%@`,?\t\n \\"


def mutate_text(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(("truncate", "truncate", "splice", "insert", "flip", "dupline",
                       "dropline", "bom", "utf16", "nul", "indent"))
    n = len(raw)
    at = rng.randrange(n + 1) if n else 0
    if kind == "truncate":
        return raw[:at], f"truncate@{at}"
    if kind == "splice":
        end = min(n, at + rng.randint(1, 200))
        return raw[:at] + raw[end:], f"splice@{at}:{end}"
    if kind == "insert":
        noise = "".join(rng.choice(YAML_NOISE) for _ in range(rng.randint(1, 8)))
        return raw[:at] + noise.encode() + raw[at:], f"insert@{at}:{noise!r}"
    if kind == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 10)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data), "flip"
    lines = raw.split(b"\n")
    k = rng.randrange(len(lines))
    if kind == "dupline":
        return b"\n".join([*lines[:k], lines[k], *lines[k:]]), f"dupline@{k}"
    if kind == "dropline":
        return b"\n".join(lines[:k] + lines[k + 1:]), f"dropline@{k}"
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw, "bom"
    if kind == "utf16":
        return raw.decode("utf-8", "replace").encode("utf-16"), "utf16"
    if kind == "nul":
        return raw[:at] + b"\x00" + raw[at:], f"nul@{at}"
    return b"\n".join([*lines[:k], b"  " + lines[k], *lines[k + 1:]]), f"indent@{k}"


def billion_laughs(levels: int, width: int) -> bytes:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return ("\n".join(lines) + "\n").encode()


def hostile(rng: random.Random, marker: Path, doc: dict[str, Any]) -> tuple[bytes, str, str]:
    """Hand-written hostile files: (content, suffix, description)."""
    target = json.dumps(str(marker))
    valid_yaml = yaml.safe_dump(doc, sort_keys=False)
    kind = rng.choice(("empty", "blank", "comment", "null", "scalar", "list", "garbage",
                       "laughs", "aliases", "recursive", "pytag", "pytag2", "pytag3", "tag",
                       "multidoc", "deepflow", "deepblock", "deepjson", "longline", "digits",
                       "bomvalid", "control", "dupkeys", "merge", "jsonnan", "tabs"))
    if kind == "empty":
        return b"", rng.choice((".yaml", ".json")), kind
    if kind == "blank":
        return b" \n\t\n  \n", rng.choice((".yaml", ".json")), kind
    if kind == "comment":
        return b"# nothing here\n", ".yaml", kind
    if kind == "null":
        return rng.choice((b"null\n", b"~\n", b"---\n...\n")), ".yaml", kind
    if kind == "scalar":
        return rng.choice((b"42", b'"text"', b"true", b"1e400")), rng.choice((".yaml", ".json")), \
            kind
    if kind == "list":
        return b"[1, 2, 3]\n", rng.choice((".yaml", ".json")), kind
    if kind == "garbage":
        return rng.randbytes(rng.choice((1, 16, 1000, 100_000))), \
            rng.choice((".yaml", ".json")), kind
    if kind == "laughs":
        return billion_laughs(rng.randint(5, 12), rng.randint(5, 12)), ".yaml", kind
    if kind == "aliases":
        count = rng.choice((100, 10_001, 50_000))
        return (f"a: &a 1\nb: [{', '.join(['*a'] * count)}]\n").encode(), ".yaml", kind
    if kind == "recursive":
        return rng.choice((b"a: &a [*a]\n", b"a: &a {b: *a}\n", b"&a [*a, *a]\n")), ".yaml", kind
    if kind == "pytag":
        return (f"name: t\nhorizon: {{periods: 4}}\nclusters: !!python/object/apply:os.system "
                f"[\"touch {marker}\"]\n").encode(), ".yaml", kind
    if kind == "pytag2":
        return (f"!!python/object/apply:os.system [\"echo pwned > {marker}\"]\n").encode(), \
            ".yaml", kind
    if kind == "pytag3":
        tag = rng.choice(("!!python/object/apply:builtins.open",
                          "!!python/object/new:builtins.open", "!!python/name:os.system",
                          "!!python/module:os", "!!python/object/apply:subprocess.check_output"))
        return (f"name: {tag} [{target}, 'w']\n").encode(), ".yaml", kind
    if kind == "tag":
        tag = rng.choice(("!!binary aGVsbG8=", "!!set {a, b}", "!!omap [{a: 1}]", "!custom x",
                          "!!timestamp 2025-13-45", "!!float nan", "!!int 0x_", "!<tag:x> 1"))
        return valid_yaml.replace("name:", f"extra: {tag}\nname:", 1).encode(), ".yaml", kind
    if kind == "multidoc":
        return (valid_yaml + "---\n" + valid_yaml).encode(), ".yaml", kind
    if kind == "deepflow":
        d = rng.choice((63, 65, 1000, 100_000))
        return ("a: " + "[" * d + "]" * d + "\n").encode(), ".yaml", kind
    if kind == "deepblock":
        d = rng.choice((63, 65, 500))
        return "".join("  " * i + f"k{i}:\n" for i in range(d)).encode() + b"  " * d + b"x\n", \
            ".yaml", kind
    if kind == "deepjson":
        d = rng.choice((63, 65, 1000, 100_000))
        return ('{"a": ' + "[" * d + "]" * d + "}").encode(), ".json", kind
    if kind == "longline":
        return ("name: " + "x" * rng.choice((10_000, 300_000)) + "\n").encode(), ".yaml", kind
    if kind == "digits":
        digits = "9" * rng.choice((400, 4301, 100_000))
        text, suffix = rng.choice(((f"horizon: {{periods: {digits}}}\n", ".yaml"),
                                   (f'{{"horizon": {{"periods": {digits}}}}}', ".json"),
                                   (f"n: {digits}.5e99999\n", ".yaml")))
        return text.encode(), suffix, kind
    if kind == "bomvalid":
        return b"\xef\xbb\xbf" + valid_yaml.encode(), ".yaml", kind
    if kind == "control":
        ch = chr(rng.choice((0, 1, 7, 8, 0x1B, 0x7F, 0x85, 0xFFFE)))
        return valid_yaml.replace("name:", f"name{ch}:", 1).encode("utf-8", "surrogatepass"), \
            ".yaml", kind
    if kind == "dupkeys":
        return ("name: a\nname: b\n" + valid_yaml).encode(), ".yaml", kind
    if kind == "merge":
        return b"base: &b {x: 1}\nname: {<<: *b, y: 2}\n", ".yaml", kind
    if kind == "jsonnan":
        return rng.choice((b'{"name": NaN}', b'{"name": Infinity}', b'{"a": -Infinity}')), \
            ".json", kind
    return valid_yaml.replace("\n  ", "\n\t", 3).encode(), ".yaml", kind


# -- cases ------------------------------------------------------------------------------------
@dataclass
class Case:
    number: int
    description: str
    content: bytes
    suffix: str
    target: str  # "instance" or "plan"
    command: str  # "validate" or "solve"


def cases(count: int, seed: int, marker: Path) -> Iterator[Case]:
    """``count`` cases, deterministic in ``seed``."""
    bases = base_cases()
    for number in range(count):
        rng = random.Random(f"{seed}-{number}")
        instance_doc, plan_doc = rng.choice(bases)
        target = "plan" if rng.random() < 0.2 else "instance"
        command = "validate" if target == "plan" or rng.random() < 0.5 else "solve"
        roll = rng.random()
        if roll < 0.15 and target == "instance":
            content, suffix, what = hostile(rng, marker, instance_doc)
            description = f"hostile:{what}"
        else:
            doc = plan_doc if target == "plan" else instance_doc
            suffix = ".json" if target == "plan" or rng.random() < 0.5 else ".yaml"
            mutated, done = (doc, []) if roll < 0.2 else mutate_document(doc, rng)
            content = serialise(mutated, suffix, rng)
            description = "doc:" + ",".join(done) if done else "doc:unchanged"
            if roll > 0.75:
                content, how = mutate_text(content, rng)
                description += f"+text:{how}"
        yield Case(number, description, content, suffix, target, command)


# -- running a case ---------------------------------------------------------------------------
class Hang(Exception):
    """A case ran past ``PER_CASE_SECONDS``."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` in the main thread after ``seconds`` (POSIX; no limit elsewhere)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    case: Case
    exit_code: int | None
    seconds: float
    problems: list[str] = field(default_factory=list)


def _expected(path: Path, target: str) -> InstanceError | None:
    """What the library says of the file: the error, or None when it loads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            (load_plan if target == "plan" else load_instance)(path)
        except InstanceError as e:
            return e
    return None


def run_case(case: Case, workdir: Path, good_instance: Path, good_plan: Path,
             runner: CliRunner | None = None, marker: Path | None = None) -> Outcome:
    runner = runner or CliRunner()
    path = workdir / f"case{case.number}{case.suffix}"
    path.write_bytes(case.content)
    # --force: a mutated name makes the plan another instance's, refused (exit 2) without it
    if case.target == "plan":
        args = ["validate", str(good_instance), str(path), "--force"]
    elif case.command == "validate":
        args = ["validate", str(path), str(good_plan), "--force"]
    else:
        args = ["solve", str(path), "--backend", "greedy", "--time-limit", "5", "--quiet"]
    problems: list[str] = []
    started = time.perf_counter()
    try:
        with time_limit(PER_CASE_SECONDS):
            result = runner.invoke(app, args)
            expected = _expected(path, case.target)
    except Hang as e:
        return Outcome(case, None, time.perf_counter() - started, [f"hang: {e}"])
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"exception {type(result.exception).__name__}: {result.exception}")
    if "Traceback" in output:
        problems.append("traceback in the output")
    if expected is not None:
        if result.exit_code != 2:
            problems.append(f"exit {result.exit_code} for a refused file "
                            f"({expected.messages[:3]})")
        if f"error: {path}" not in result.stderr:
            problems.append("the error does not name the file")
        if not expected.issues:
            problems.append("InstanceError without issues")
        for issue in expected.issues:
            if not issue.location and not issue.message.startswith(WHOLE_FILE):
                problems.append(f"issue without a location: {issue.message[:200]!r}")
    elif result.exit_code not in (0, 1):
        problems.append(f"exit {result.exit_code} for a file that loads")
    if marker is not None and marker.exists():
        problems.append("a tag executed code: the marker file exists")
        marker.unlink()
    path.unlink()
    return Outcome(case, result.exit_code, seconds, problems)


def prepare(workdir: Path) -> tuple[Path, Path]:
    """A valid instance and a plan for it, for the half of ``validate`` that is not fuzzed."""
    instance_doc, plan_doc = base_cases()[0]
    good_instance = workdir / "good.yaml"
    good_instance.write_text(yaml.safe_dump(instance_doc, sort_keys=False), encoding="utf-8")
    good_plan = workdir / "good-plan.json"
    good_plan.write_text(json.dumps(plan_doc), encoding="utf-8")
    return good_instance, good_plan


@contextlib.contextmanager
def command_built_once() -> Iterator[None]:
    """Typer's runner rebuilds the click command from the app on every invoke (half the time
    of a small case); build it once while the cases run."""
    import typer.testing

    real = getattr(typer.testing, "_get_command", None)
    if real is None:  # another Typer: no shortcut
        yield
        return
    built: dict[int, Any] = {}

    def get_command(typer_app: Any) -> Any:
        if id(typer_app) not in built:
            built[id(typer_app)] = real(typer_app)
        return built[id(typer_app)]

    typer.testing._get_command = get_command
    try:
        yield
    finally:
        typer.testing._get_command = real


def run(count: int, seed: int, workdir: Path,
        progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run ``count`` cases; returns every outcome (``problems`` empty when the case passed)."""
    marker = workdir / MARKER
    good_instance, good_plan = prepare(workdir)
    runner = CliRunner()
    outcomes = []
    with command_built_once():
        for case in cases(count, seed, marker):
            outcome = run_case(case, workdir, good_instance, good_plan, runner, marker)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=20, help="failures to print in full")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    failures: list[Outcome] = []
    codes: dict[Any, int] = {}
    kinds: dict[str, int] = {}
    slowest: list[Outcome] = []

    def progress(o: Outcome) -> None:
        codes[o.exit_code] = codes.get(o.exit_code, 0) + 1
        kind = o.case.description.split(":")[0] + ":" + (
            o.case.description.split(":")[1].split("@")[0].split(",")[0])
        kinds[kind] = kinds.get(kind, 0) + 1
        slowest.append(o)
        slowest.sort(key=lambda x: -x.seconds)
        del slowest[5:]
        if o.problems:
            failures.append(o)
        done = o.case.number + 1
        if done % 500 == 0:
            print(f"{done} cases, {len(failures)} failing, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="gpualloc-fuzz-") as tmp:
        run(args.cases, args.seed, Path(tmp), progress)
    print(f"\n{args.cases} cases in {time.perf_counter() - started:.0f} s; exit codes "
          f"{dict(sorted(codes.items(), key=str))}")
    print("kinds:", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("slowest:", ", ".join(f"#{o.case.number} {o.case.description[:40]} {o.seconds:.1f}s"
                                for o in slowest))
    print(f"{len(failures)} failing case(s)")
    for o in failures[: args.show]:
        print(f"- #{o.case.number} {o.case.suffix} {o.case.target} {o.case.command} "
              f"{o.case.description[:200]}")
        for p in o.problems:
            print(f"    {p[:400]}")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "200")
    sys.exit(main())
