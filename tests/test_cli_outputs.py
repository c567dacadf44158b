"""Output paths through the CLI: checked before any work (one line, exit 2), and a write that
fails all the same at the end still saves the plan somewhere and says where; never a
traceback. Also input files that are not regular files (a FIFO) through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpualloc import optimizer
from gpualloc.cli import app
from gpualloc.models import load_plan
from gpualloc.models import planfile as planfile_mod
from gpualloc.models.validator import validate

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = ROOT / "instances" / "portfolio.yaml"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stderr


@pytest.fixture
def no_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any solve is a failure: the output check must come first."""
    def solve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("solved before checking the output path")

    monkeypatch.setattr(optimizer, "solve", solve)


def bad_paths(tmp_path: Path) -> list[tuple[Path, str]]:
    """(path, reason) for each kind of unwritable output path."""
    a_file = tmp_path / "FILE"
    a_file.write_text("x")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    cases = [(tmp_path, "it is a directory"),
             (a_file / "p.json", f"{a_file} is not a directory"),
             (a_file / "deeper" / "p.json", f"{a_file} is not a directory")]
    if not os.access(read_only, os.W_OK):  # root writes anywhere
        cases.append((read_only / "p.json", f"no file can be created in {read_only}"))
    if Path("/proc/version").exists():
        cases.append((Path("/proc/version"), "it is under /proc, a system folder"))
    if Path("/dev/stdout").exists():  # a link to /proc/self/fd/1: never replaced
        cases.append((Path("/dev/stdout"), "it is under /dev, a system folder"))
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.json"
        os.mkfifo(fifo)
        cases.append((fifo, "it is a FIFO, not a regular file"))
        link = tmp_path / "to-fifo.json"  # like /dev/stdout, a link to a special file
        link.symlink_to(fifo)
        cases.append((link, "it links to a FIFO, not to a regular file"))
    return cases


def test_solve_refuses_each_unwritable_out_before_solving(tmp_path: Path,
                                                          no_solve: None) -> None:
    for path, reason in bad_paths(tmp_path):
        for option, what in (("--out", "the plan"), ("--report", "the report")):
            code, stderr = invoke("solve", INSTANCE, "--backend", "greedy", option, path)
            assert code == 2, (path, stderr)
            lines = stderr.strip().splitlines()
            assert len(lines) == 1, lines
            assert lines[0].startswith(f"error: cannot write {what} to {path}: {reason}"), lines


@pytest.mark.parametrize("command, option, what", [
    (["bench", str(INSTANCE), "--backend", "greedy"], "--csv", "the CSV"),
    (["export", "PLAN"], "--csv", "the CSV"),
    (["generate", "--jobs", "5"], "--out", "the instance"),
    (["import-jobs", str(INSTANCE), "JOBS"], "--out", "the instance"),
    (["report", str(INSTANCE), "PLAN"], "--html", "the report"),
    (["report", str(INSTANCE), "PLAN"], "--md-out", "the Markdown summary"),
    (["whatif", str(INSTANCE), "--sweep", "credits:all=0.5x..1x:2"], "--csv", "the CSV"),
    (["whatif", str(INSTANCE), "--sweep", "credits:all=0.5x..1x:2"], "--plot", "the plot"),
    (["marginal", str(INSTANCE)], "--csv", "the CSV"),
    (["credits", str(INSTANCE)], "--csv", "the CSV"),
])
def test_every_output_option_is_checked_first(tmp_path: Path, no_solve: None, command: list[str],
                                              option: str, what: str) -> None:
    a_file = tmp_path / "FILE"
    a_file.write_text("x")
    command = [str(tmp_path / "missing") if c in ("PLAN", "JOBS") else c for c in command]
    code, stderr = invoke(*command, option, a_file / "out.csv")
    assert code == 2
    assert stderr.strip() == f"error: cannot write {what} to {a_file / 'out.csv'}: {a_file} " \
                             "is not a directory"


def test_report_png_folder_must_be_a_folder(tmp_path: Path) -> None:
    a_file = tmp_path / "FILE"
    a_file.write_text("x")
    code, stderr = invoke("report", INSTANCE, tmp_path / "missing.json", "--png", a_file)
    assert code == 2
    assert stderr.strip() == f"error: cannot write the figures to {a_file}: it is a file, " \
                             "not a folder"


def test_missing_folders_are_fine(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "plan.json"
    code, _ = invoke("solve", INSTANCE, "--backend", "greedy", "--quiet", "--out", out)
    assert code == 0
    assert load_plan(out).assignments
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deeper", "new", "plan.json"]


def test_a_write_that_fails_at_the_end_saves_the_plan_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "plan.json"
    real = planfile_mod.atomic_write_text

    def flaky(path: Any, text: str) -> None:  # the disk filled up after the check
        if Path(path) == target:
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(planfile_mod, "atomic_write_text", flaky)
    code, stderr = invoke("solve", INSTANCE, "--backend", "greedy", "--quiet", "--out", target)
    assert code == 2
    assert not target.exists()
    line = " ".join(stderr.split())
    prefix = f"error: cannot write the plan to {target} (No space left on device); written to "
    assert line.startswith(prefix) and line.endswith(" instead"), line
    spare = Path(line[len(prefix):-len(" instead")])
    try:
        plan = load_plan(spare)
        assert json.loads(spare.read_text())["assignments"]
        from gpualloc.models import load_instance

        assert validate(load_instance(INSTANCE), plan) == []
    finally:
        spare.unlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_instance_is_refused_by_the_cli(tmp_path: Path, no_solve: None) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # no writer: opening it for reading would block for ever
    code, stderr = invoke("solve", fifo)
    assert code == 2
    assert f"error: {fifo}: 1 problem(s)" in stderr
    assert "cannot read instance file: it is a FIFO (named pipe), not a regular file" in stderr
