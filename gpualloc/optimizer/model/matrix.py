"""One sparse-matrix view of a ``LinearModel``, built once and shared by every consumer.

``matrix(model)`` is the rows as numpy arrays, row-major (``row_ptr``, ``cols``, ``vals``,
``rows``: each entry's row) and column-major (``col_ptr``, ``col_rows``, ``col_vals``: the
variable-to-row map), plus ``sense`` (0 ``<=``, 1 ``>=``, 2 ``==``) and ``rhs``. It is cached
on the model and rebuilt only when rows or variables are added (re-planning adds rows after
the build); the objective is read from the model each time (re-planning changes it). The
greedy, the LP, the Lagrangian, LNS, re-planning and ``LinearModel.check`` all use it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..stop import Stop, StopRequested

LinearModel = Any  # formulation.LinearModel (which imports this module: no import back)

SENSES = {"<=": 0, ">=": 1, "==": 2}
CHUNK_ROWS = 2000


class Matrix:
    """A model's rows as CSR and CSC arrays (see the module doc)."""

    def __init__(self, model: LinearModel, stop: Stop | None = None) -> None:
        began = time.perf_counter()
        rows = model.rows
        n, m = model.num_vars, len(rows)
        lengths = np.fromiter((len(r.vars) for r in rows), np.int64, m)
        nnz = int(lengths.sum())
        self.n, self.m, self.nnz = n, m, nnz
        self.row_ptr = np.zeros(m + 1, np.int64)
        np.cumsum(lengths, out=self.row_ptr[1:])
        self.rows = np.repeat(np.arange(m, dtype=np.int64), lengths)
        self.cols = np.empty(nnz, np.int64)
        self.vals = np.empty(nnz, np.float64)
        ptr = self.row_ptr.tolist()
        for lo in range(0, m, CHUNK_ROWS):  # in chunks: a stop is seen within a fraction of 1 s
            if stop is not None and stop.stopped:
                raise StopRequested("building the model's matrix", stop.why() or "stop",
                                    f"{n:,} placements")
            part = rows[lo:lo + CHUNK_ROWS]
            a, b = ptr[lo], ptr[min(m, lo + CHUNK_ROWS)]
            if a == b:
                continue
            # each row's arrays read in place (``Row`` stores ``array('i')``/``array('d')``)
            self.cols[a:b] = np.concatenate([np.frombuffer(r.vars, np.int32) for r in part])
            self.vals[a:b] = np.concatenate([np.frombuffer(r.coefs, np.float64) for r in part])
        self.sense = np.fromiter((SENSES[r.sense] for r in rows), np.int8, m)
        self.rhs = np.fromiter((r.rhs for r in rows), np.float64, m)
        order = _by_column(self.cols, n)
        if stop is not None and stop.stopped:
            raise StopRequested("building the model's matrix", stop.why() or "stop",
                                f"{n:,} placements")
        self.col_rows = self.rows[order]
        self.col_vals = self.vals[order]
        self.col_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(self.cols, minlength=n), out=self.col_ptr[1:])
        self._model = model
        self.key = _key(model)
        # how long this took: a measure of the model's size and of the machine's speed now,
        # by which ``solve`` keeps time back for making the plan and freeing the model
        self.seconds = time.perf_counter() - began

    def keep_columns(self, alive: np.ndarray, model: LinearModel) -> None:
        """Keep only the columns in ``alive``, renumbered, and become the matrix of ``model``
        (the same rows over those columns: ``presolve``'s result). In place, array by array,
        so that each old array is freed as its successor is made."""
        remap = np.cumsum(alive) - 1
        keep = alive[self.cols]
        self.rows, self.vals = self.rows[keep], self.vals[keep]
        self.cols = remap[self.cols[keep]]
        del keep, remap
        self.nnz = len(self.cols)
        self.row_ptr = np.zeros(self.m + 1, np.int64)
        np.cumsum(np.bincount(self.rows, minlength=self.m), out=self.row_ptr[1:])
        lengths = np.diff(self.col_ptr)
        by_col = np.repeat(alive, lengths)
        self.col_rows, self.col_vals = self.col_rows[by_col], self.col_vals[by_col]
        del by_col
        self.n = int(alive.sum())
        self.col_ptr = np.zeros(self.n + 1, np.int64)
        np.cumsum(lengths[alive], out=self.col_ptr[1:])
        self.__dict__.pop("job_of", None)
        self._model = model
        self.key = _key(model)
        model._matrix = self  # ``seconds`` stays the build's: what the solve's reserves use

    @functools.cached_property
    def job_of(self) -> np.ndarray:
        """Each column's job number (``job_numbers``)."""
        return job_numbers(self._model)

    @property
    def cost(self) -> np.ndarray:
        """The objective coefficients (read from the model: re-planning changes them)."""
        return np.asarray(self._model.objective, dtype=np.float64)

    def activity(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """``A x`` for a 0/1 (or fractional) vector ``x``."""
        x = np.asarray(values, dtype=np.float64)
        return np.bincount(self.rows, weights=self.vals * x[self.cols], minlength=self.m)

    def reduced(self, prices: np.ndarray) -> np.ndarray:
        """The reduced costs ``c - A' prices`` (one price per row)."""
        return self.cost - np.bincount(self.cols, weights=self.vals * prices[self.rows],
                                       minlength=self.n)

    def signed(self, prices: np.ndarray) -> np.ndarray:
        """``prices`` projected onto the signs that make a Lagrangian bound valid: at least 0
        on ``<=`` rows, at most 0 on ``>=`` rows, free on ``==`` rows."""
        y = np.where(self.sense == 0, np.maximum(prices, 0.0), prices)
        return np.where(self.sense == 1, np.minimum(y, 0.0), y)

    def violated(self, values: Sequence[float] | np.ndarray, tol: float = 1e-6) -> np.ndarray:
        """Indices of the rows ``values`` violates (slack ``tol * max(1, |rhs|)``)."""
        lhs = self.activity(values)
        slack = tol * np.maximum(1.0, np.abs(self.rhs))
        bad = np.where(self.sense == 0, lhs > self.rhs + slack,
                       np.where(self.sense == 1, lhs < self.rhs - slack,
                                np.abs(lhs - self.rhs) > slack))
        return np.flatnonzero(bad)

    def column(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, coefficients) of variable ``v``."""
        a, b = self.col_ptr[v], self.col_ptr[v + 1]
        return self.col_rows[a:b], self.col_vals[a:b]


def job_numbers(model: LinearModel) -> np.ndarray:
    """Each variable's job number (``model.by_job`` order); a variable of no job has its own
    number, from ``len(model.by_job)`` on. ``Matrix.job_of`` caches it."""
    by_job = model.by_job
    job_of = np.arange(model.num_vars, dtype=np.int64) + len(by_job)
    for k, idx in enumerate(by_job.values()):
        job_of[idx] = k
    return job_of


def top_per_job(candidates: np.ndarray, score: np.ndarray, job_of: np.ndarray,
                k: int) -> np.ndarray:
    """Of the column indices ``candidates``, each job's ``k`` of highest ``score`` (ties: lower
    index first), grouped by job number."""
    if len(candidates) == 0:
        return candidates
    jobs = job_of[candidates]
    order = np.lexsort((candidates, -score[candidates], jobs))
    cand, jobs = candidates[order], jobs[order]
    first = np.flatnonzero(np.r_[True, jobs[1:] != jobs[:-1]])
    rank = np.arange(len(cand)) - np.repeat(first, np.diff(np.r_[first, len(cand)]))
    return cand[rank < k]


def linked_columns(model: LinearModel, linking: np.ndarray) -> list[np.ndarray]:
    """The columns (ascending) of each group of jobs linked by the rows where ``linking`` is
    true (a row links the jobs of its columns; a job's columns stay together), largest group
    first."""
    import networkx as nx

    mat = model.matrix()
    job_of = mat.job_of
    keep = np.asarray(linking, dtype=bool)[mat.rows]
    rows, jobs = mat.rows[keep], job_of[mat.cols[keep]]
    same = (rows[1:] == rows[:-1]) & (jobs[1:] != jobs[:-1])
    nodes = int(job_of.max()) + 1 if mat.n else 0
    pairs = np.unique(jobs[:-1][same] * nodes + jobs[1:][same])
    graph = nx.Graph()
    graph.add_nodes_from(range(nodes))
    graph.add_edges_from(zip((pairs // nodes).tolist(), (pairs % nodes).tolist(), strict=True))
    order = np.argsort(job_of, kind="stable")
    starts = np.searchsorted(job_of[order], np.arange(nodes + 1))
    groups = []
    for comp in nx.connected_components(graph):
        members = np.sort(np.fromiter(comp, np.int64))
        cols = np.concatenate([order[starts[k]:starts[k + 1]] for k in members])
        if len(cols):
            groups.append(np.sort(cols))
    groups.sort(key=lambda g: (-len(g), int(g[0])))
    return groups


def concat_ranges(ptr: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(ptr[w], ptr[w + 1])`` for ``w`` in ``which``."""
    lo, size = ptr[which], ptr[which + 1] - ptr[which]
    ends = np.cumsum(size)
    return np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(lo - (ends - size), size)


def _by_column(cols: np.ndarray, n: int) -> np.ndarray:
    """A stable order of the entries by column (a counting sort: entries of one column keep
    their row order)."""
    if len(cols) == 0:
        return np.zeros(0, np.int64)
    return np.argsort(cols, kind="stable")


def _key(model: LinearModel) -> tuple[int, int, int]:
    return (id(model.rows), len(model.rows), model.num_vars)


def matrix(model: LinearModel, stop: Stop | None = None) -> Matrix:
    """The model's matrix view, built on first use (under ``stop``: ``StopRequested`` when it
    cannot finish) and cached on the model."""
    cached = model._matrix
    if cached is None or cached.key != _key(model):
        cached = Matrix(model, stop)
        model._matrix = cached
    return cached
