"""The OR-Library generalized assignment problem (GAP) as gpualloc instances.

File format (Beasley's OR-Library, ``gap1.txt`` .. ``gap12.txt``, ``gapa.txt`` .. ``gapd.txt``):
a stream of integers separated by any whitespace: the number of problems P, then for each
problem ``m n``, the ``m x n`` matrix ``c`` (profit when maximising, cost when minimising), the
``m x n`` matrix ``a`` (resource job j uses on agent i) and the ``m`` capacities ``b``. Every job
goes to exactly one agent; an agent's jobs use at most its capacity.

Mapping (``shared/benchmarks/README.md``): one period; agent ``i`` (1-based) is cluster
``agent-{i}`` with one pool of its own accelerator ``A{i}`` holding ``b_i`` GPUs at price 0; job
``j`` (1-based) is the mandatory job ``job-{j}`` of the single start-up ``gap`` (no credit
limit) with one option per agent: ``A{i}``, ``a_ij`` GPUs, 1 period, value ``c_ij`` when
maximising or ``K - c_ij`` with ``K = max(c) + 1`` when minimising (then the GAP cost is
``n * K`` minus the gpualloc objective). An option with ``a_ij > b_i`` can never fit; the
formulation drops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.errors import InstanceError, Issue
from ..models.instance import MAX_GPUS, MAX_MONEY, Instance
from ..models.io import MAX_INPUT_BYTES

_TOKEN = re.compile(r"\S+")
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class GapProblem:
    """One GAP problem: ``c`` and ``a`` are ``agents x jobs``, ``b`` has ``agents`` entries.

    ``index`` is the 1-based position of the problem in its file and ``source`` the file it
    was read from (``None`` when built by hand).
    """

    name: str
    agents: int
    jobs: int
    c: tuple[tuple[int, ...], ...]
    a: tuple[tuple[int, ...], ...]
    b: tuple[int, ...]
    minimize: bool = False
    index: int = 1
    source: str | None = None

    @property
    def sense(self) -> str:
        return "min" if self.minimize else "max"

    @property
    def offset(self) -> int:
        """``K = max(c) + 1``: option values are ``K - c_ij`` when minimising."""
        return max(max(row) for row in self.c) + 1

    def option_value(self, agent: int, job: int) -> int:
        """gpualloc value of giving ``job`` to ``agent`` (both 0-based)."""
        cij = self.c[agent][job]
        return self.offset - cij if self.minimize else cij

    def objective_from(self, plan_objective: float) -> float:
        """The GAP objective of a plan whose gpualloc objective is ``plan_objective``.

        Maximisation: identical. Minimisation: ``n * K - plan_objective``. Applied to an upper
        bound on the gpualloc objective it gives a lower bound on the GAP cost.
        """
        if not self.minimize:
            return float(plan_objective)
        return float(self.jobs * self.offset - plan_objective)

    def to_instance(self) -> Instance:
        """The one-period gpualloc instance of this problem (see the module docstring)."""
        m, n = self.agents, self.jobs
        data: dict[str, Any] = {
            "name": self.name,
            "horizon": {"periods": 1},
            "accelerators": [
                {"name": f"A{i + 1}", "tpp": 0.0, "export_class": "unrestricted"}
                for i in range(m)
            ],
            "clusters": [
                {"id": f"agent-{i + 1}", "region": "gap", "country": "XX",
                 "pools": [{"accelerator": f"A{i + 1}", "gpus": self.b[i],
                            "price_per_gpu_hour": 0.0}]}
                for i in range(m)
            ],
            "startups": [{"id": "gap", "name": f"GAP {self.name}", "credits": None}],
            "jobs": [
                {"id": f"job-{j + 1}", "startup": "gap", "mandatory": True,
                 "options": [{"accelerator": f"A{i + 1}", "gpus": self.a[i][j], "periods": 1,
                              "value": float(self.option_value(i, j))} for i in range(m)]}
                for j in range(n)
            ],
        }
        return Instance.model_validate(data)


class _Tokens:
    """A stream of integer tokens with their positions, for located errors."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.matches = list(_TOKEN.finditer(text))
        self.pos = 0

    def __len__(self) -> int:
        return len(self.matches)

    def remaining(self) -> int:
        return len(self.matches) - self.pos

    def line(self, k: int) -> int:
        return self.text.count("\n", 0, self.matches[k].start()) + 1

    def take(self, what: str) -> int:
        k = self.pos
        tok = self.matches[k].group()
        self.pos += 1
        if not _INT.fullmatch(tok):
            shown = tok if len(tok) <= 30 else tok[:27] + "..."
            raise InstanceError([Issue(f"token {k + 1}", f"expected an integer ({what}), got "
                                       f"{shown!r} (line {self.line(k)})")], self.source)
        return int(tok)

    def matrix(self, label: str, rows: int, cols: int, low: float, high: float,
               issues: list[Issue], vector: bool = False) -> list[list[int]]:
        """``rows x cols`` integers (``vector``: one row, labelled ``label[j]``); values
        outside ``[low, high]`` are added to ``issues``."""
        out = []
        for i in range(rows):
            row = []
            for j in range(cols):
                k = self.pos
                cell = f"{label}[{j + 1}]" if vector else f"{label}[{i + 1}][{j + 1}]"
                v = self.take(cell)
                if not low <= v <= high:
                    issues.append(Issue(f"token {k + 1}", f"{cell} = {v} is outside "
                                        f"[{low:g}, {high:g}] (line {self.line(k)})"))
                row.append(v)
            out.append(row)
        return out


def parse_gap(text: str, source: str = "gap", minimize: bool = False) -> list[GapProblem]:
    """Parse OR-Library GAP text; ``source`` names problems (``{stem}-{k}``) and errors."""
    stem = Path(source).stem or "gap"
    tokens = _Tokens(text, source)
    if len(tokens) == 0:
        raise InstanceError([Issue("", "empty GAP file: expected the number of problems")],
                            source)
    count = tokens.take("number of problems")
    if count < 1:
        raise InstanceError([Issue("token 1", f"number of problems must be positive, got "
                                   f"{count}")], source)
    problems = []
    for p in range(1, count + 1):
        where = f"problem {p}"
        if tokens.remaining() < 2:
            raise InstanceError([Issue(where, "file ends early: expected 'agents jobs' "
                                       f"(the file announces {count} problems)")], source)
        first = tokens.pos
        m = tokens.take(f"{where}: number of agents")
        n = tokens.take(f"{where}: number of jobs")
        for k, (label, v) in enumerate((("agents", m), ("jobs", n))):
            if v < 1:
                raise InstanceError([Issue(f"token {first + k + 1}", f"{where}: number of "
                                           f"{label} must be positive, got {v}")], source)
        need = 2 * m * n + m
        if tokens.remaining() < need:
            raise InstanceError([Issue(where, f"file ends early: {m} agents x {n} jobs need "
                                       f"{need} numbers (c, a, b), {tokens.remaining()} left")],
                                source)
        issues: list[Issue] = []

        # Values become option values (>= 0 when maximising); a becomes option GPUs (>= 1).
        c_low = -int(MAX_MONEY) if minimize else 0
        c = tokens.matrix(f"{where}: c", m, n, c_low, MAX_MONEY, issues)
        a = tokens.matrix(f"{where}: a", m, n, 1, MAX_GPUS, issues)
        b = tokens.matrix(f"{where}: b", 1, m, 0, MAX_GPUS, issues, vector=True)[0]
        if minimize and not issues and max(map(max, c)) - min(map(min, c)) + 1 > MAX_MONEY:
            issues.append(Issue(where, "costs span too wide a range"))
        if issues:
            raise InstanceError(issues, source)
        problems.append(GapProblem(
            name=f"{stem}-{p}", agents=m, jobs=n, c=tuple(map(tuple, c)),
            a=tuple(map(tuple, a)), b=tuple(b), minimize=minimize, index=p, source=source))
    if tokens.remaining():
        k = tokens.pos
        raise InstanceError([Issue(f"token {k + 1}", f"unexpected data after the {count} "
                                   f"announced problem(s): {tokens.matches[k].group()[:30]!r} "
                                   f"(line {tokens.line(k)})")], source)
    return problems


def read_gap(path: str | Path, minimize: bool = False) -> list[GapProblem]:
    """Read every problem of an OR-Library GAP file.

    ``minimize``: the file's ``c`` are costs to minimise (``gapa``..``gapd``) rather than
    profits to maximise (``gap1``..``gap12``). Raises a located ``InstanceError`` when the file
    is unreadable or malformed.
    """
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise InstanceError([Issue("", f"file is {size / 2**20:.1f} MiB, over the "
                                       f"{MAX_INPUT_BYTES / 2**20:.0f} MiB input limit")], source)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InstanceError([Issue(f"byte {e.start}", "file is not UTF-8 text")], source) from None
    except OSError as e:
        raise InstanceError([Issue("", f"cannot read GAP file: {e.strerror}")], source) from None
    return parse_gap(text, source, minimize)


__all__ = ["GapProblem", "parse_gap", "read_gap"]
