"""Fuzzed input files through the CLI: a located error and exit 2, never a traceback or a hang.

A sample of the cases of the large harness ``tests/fuzz/fuzz_inputs.py`` (run that one with
``python tests/fuzz/fuzz_inputs.py --cases 10000``), plus the hostile files that must always be
covered: a 50 MB file refused by the size limit before it is read, YAML alias bombs, a
``!!python/object/apply:os.system`` tag that must not run, binary garbage, a truncated file, an
empty file, a UTF-8 BOM (accepted), non-finite and huge numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gpualloc.cli import app
from tests.fuzz import fuzz_inputs as fuzz

SAMPLE = 200


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def good(workdir: Path) -> tuple[Path, Path]:
    return fuzz.prepare(workdir)


@pytest.fixture(scope="module")
def instance_doc() -> dict:
    return fuzz.base_cases()[0][0]


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    return result.exit_code, result.stderr


def test_a_sample_of_the_fuzz_cases(workdir: Path) -> None:
    started = time.perf_counter()
    outcomes = fuzz.run(SAMPLE, seed=2024, workdir=workdir)
    failing = [f"#{o.case.number} {o.case.description[:120]}: {o.problems}"
               for o in outcomes if o.problems]
    assert failing == []
    assert len(outcomes) == SAMPLE
    codes = {o.exit_code for o in outcomes}
    assert 2 in codes and codes & {0, 1}, codes  # both refused and accepted files were tried
    assert time.perf_counter() - started < 60


def test_a_50_mb_file_is_refused_by_the_size_limit_quickly(workdir: Path, good: tuple[Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = workdir / "big.yaml"
    with open(path, "wb") as fh:  # a real 50 MB file (not sparse): a comment, then a mapping
        chunk = b"# " + b"x" * (2**20 - 3) + b"\n"
        for _ in range(50):
            fh.write(chunk)
        fh.write(b"name: t\n")
    assert path.stat().st_size > 50 * 2**20
    for command in (["validate", str(path), str(good[1])], ["solve", str(path)]):
        started = time.perf_counter()
        code, stderr = invoke(*command, env={"GPUALLOC_MAX_INPUT_MB": "32"})
        assert time.perf_counter() - started < 5
        assert code == 2
        assert f"error: {path}: 1 problem(s)" in stderr
        assert "file is 50.0 MiB, over the 32.0 MiB input limit (set GPUALLOC_MAX_INPUT_MB to " \
               "raise it)" in stderr


@pytest.mark.parametrize("levels, width", [(9, 9), (12, 10)])
def test_yaml_alias_bombs_are_refused(workdir: Path, levels: int, width: int) -> None:
    path = workdir / "laughs.yaml"
    path.write_bytes(fuzz.billion_laughs(levels, width))
    started = time.perf_counter()
    code, stderr = invoke("solve", str(path))
    assert time.perf_counter() - started < 10
    assert code == 2
    assert "alias bomb" in stderr
    assert "line " in stderr  # located


@pytest.mark.parametrize("text", [
    '!!python/object/apply:os.system ["echo pwned > {marker}"]\n',
    'name: t\nhorizon: {{periods: 4}}\nclusters: !!python/object/apply:os.system '
    '["echo pwned > {marker}"]\n',
    'name: !!python/object/apply:subprocess.check_output [["touch", "{marker}"]]\n',
    'name: !!python/object/new:os.system ["echo pwned > {marker}"]\n',
])
def test_python_tags_are_refused_and_nothing_runs(workdir: Path, text: str) -> None:
    marker = workdir / "pwned"
    path = workdir / "tag.yaml"
    path.write_text(text.format(marker=marker), encoding="utf-8")
    code, stderr = invoke("solve", str(path))
    assert code == 2
    assert not marker.exists()
    assert "is not allowed: instance files hold plain data only" in stderr
    assert "line 1, column" in stderr or "line 3, column" in stderr


@pytest.mark.parametrize("name, content, message", [
    ("empty.yaml", b"", "the file is empty"),
    ("empty.json", b"", "the file is empty"),
    ("garbage.yaml", bytes(range(256)) * 40, "file is not UTF-8 text"),
    ("garbage.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file is not UTF-8 text"),
    ("nul.yaml", b"name: t\x00\n", "character U+0000 is not allowed in YAML"),
    ("utf16.yaml", "name: t\n".encode("utf-16"), "it looks like UTF-16"),
    ("scalar.json", b"42", "must be a mapping"),
    ("nan.json", b'{"name": "t", "horizon": {"periods": NaN}, "clusters": [], '
                 b'"startups": []}', "horizon.periods"),
    ("huge.json", b'{"name": "t", "horizon": {"periods": 1e308}, "clusters": [], '
                  b'"startups": []}', "horizon.periods"),
    ("digits.json", b'{"name": "t", "horizon": {"periods": ' + b"9" * 400 + b'}, '
                    b'"clusters": [], "startups": []}', "horizon.periods"),
    ("deep.json", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than"),
    ("deep.yaml", b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper than"),
])
def test_hostile_files(workdir: Path, name: str, content: bytes, message: str) -> None:
    path = workdir / name
    path.write_bytes(content)
    code, stderr = invoke("solve", str(path))
    assert code == 2
    assert f"error: {path}" in stderr
    assert message in stderr


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_truncated_files_are_located_errors(workdir: Path, instance_doc: dict,
                                            suffix: str) -> None:
    text = (json.dumps(instance_doc, indent=2) if suffix == ".json"
            else yaml.safe_dump(instance_doc, sort_keys=False))
    path = workdir / f"truncated{suffix}"
    for cut in (len(text) // 3, len(text) // 2, len(text) - 2):
        path.write_text(text[:cut], encoding="utf-8")
        code, stderr = invoke("solve", str(path), "--backend", "greedy", "--quiet")
        assert code in (0, 1, 2)  # a YAML cut at a line end may still be a valid instance
        if code == 2:
            assert "problem(s)" in stderr


def test_a_utf8_bom_is_accepted(workdir: Path, instance_doc: dict) -> None:
    path = workdir / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(instance_doc).encode())
    code, _ = invoke("solve", str(path), "--backend", "greedy", "--quiet")
    assert code == 0


# -- CLI-level fuzzing: the default backend, every kind of input file (tests/fuzz/fuzz_cli.py) --
CLI_SAMPLE = 16  # a few seconds: instances, scenario files, plan files (risk files: a hook)


def _cli_failures(outcomes: list) -> list[str]:
    return [f"#{o.case.number} {o.case.kind} {o.case.command} {o.case.description[:100]}: "
            f"{o.problems}" for o in outcomes if o.problems]


def test_a_sample_of_the_cli_fuzz_cases(tmp_path: Path) -> None:
    from tests.fuzz import fuzz_cli

    outcomes = fuzz_cli.run(CLI_SAMPLE, seed=18, workdir=tmp_path)
    assert _cli_failures(outcomes) == []
    ran = [o for o in outcomes if not o.skipped]
    assert {o.case.kind for o in ran} >= {"instance", "scenario", "plan"}
    assert {o.exit_code for o in ran} >= {0, 2}, {o.exit_code for o in ran}
    assert all(o.exit_code in fuzz_cli.EXIT_CODES for o in ran)


def test_a_fuzzed_instance_in_a_real_process(tmp_path: Path) -> None:
    # one case end to end as its own process: the exit code and stderr a user sees
    from tests.fuzz import fuzz_cli

    outcomes = fuzz_cli.run(3, seed=7, workdir=tmp_path, use_subprocess=True,
                            only=("instance",))
    assert outcomes and _cli_failures(outcomes) == []


@pytest.mark.fuzz
def test_the_cli_fuzz_harness(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Opt-in (``pytest -m fuzz``): a larger sample of both harnesses."""
    if "fuzz" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt-in: run with pytest -m fuzz")
    from tests.fuzz import fuzz_cli

    assert _cli_failures(fuzz_cli.run(400, seed=0, workdir=tmp_path)) == []
    outcomes = fuzz.run(2000, seed=0, workdir=tmp_path)
    assert [o.problems for o in outcomes if o.problems] == []
