"""One sparse-matrix view of a ``LinearModel``, built once and shared by every consumer.

``matrix(model)`` is the rows as numpy arrays, row-major (``row_ptr``, ``cols``, ``vals``,
``rows``: each entry's row) and column-major (``col_ptr``, ``col_rows``, ``col_vals``: the
variable-to-row map), plus ``sense`` (0 ``<=``, 1 ``>=``, 2 ``==``) and ``rhs``. It is cached
on the model and rebuilt only when rows or variables are added (re-planning adds rows after
the build); the objective is read from the model each time (re-planning changes it). The
greedy, the LP, the Lagrangian, LNS, re-planning and ``LinearModel.check`` all use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .formulation import LinearModel

SENSES = {"<=": 0, ">=": 1, "==": 2}


class Matrix:
    """A model's rows as CSR and CSC arrays (see the module doc)."""

    def __init__(self, model: LinearModel) -> None:
        rows = model.rows
        n, m = model.num_vars, len(rows)
        lengths = np.fromiter((len(r.vars) for r in rows), np.int64, m)
        nnz = int(lengths.sum())
        self.n, self.m, self.nnz = n, m, nnz
        self.row_ptr = np.zeros(m + 1, np.int64)
        np.cumsum(lengths, out=self.row_ptr[1:])
        self.rows = np.repeat(np.arange(m, dtype=np.int64), lengths)
        self.cols = np.fromiter(chain.from_iterable(r.vars for r in rows), np.int64, nnz)
        self.vals = np.fromiter(chain.from_iterable(r.coefs for r in rows), np.float64, nnz)
        self.sense = np.fromiter((SENSES[r.sense] for r in rows), np.int8, m)
        self.rhs = np.fromiter((r.rhs for r in rows), np.float64, m)
        order = _by_column(self.cols, n)
        self.col_rows = self.rows[order]
        self.col_vals = self.vals[order]
        self.col_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(self.cols, minlength=n), out=self.col_ptr[1:])
        self._model = model
        self.key = _key(model)

    @property
    def cost(self) -> np.ndarray:
        """The objective coefficients (read from the model: re-planning changes them)."""
        return np.asarray(self._model.objective, dtype=np.float64)

    def activity(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """``A x`` for a 0/1 (or fractional) vector ``x``."""
        x = np.asarray(values, dtype=np.float64)
        return np.bincount(self.rows, weights=self.vals * x[self.cols], minlength=self.m)

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

    def touches(self) -> list[list[tuple[int, float]]]:
        """The variable-to-row map as Python lists: per variable, its (row, coefficient)s.
        For loops that visit a few variables many times (LNS); vectorised code uses
        ``col_ptr``/``col_rows``/``col_vals``."""
        rows, vals, ptr = self.col_rows.tolist(), self.col_vals.tolist(), self.col_ptr.tolist()
        return [list(zip(rows[ptr[v]:ptr[v + 1]], vals[ptr[v]:ptr[v + 1]], strict=True))
                for v in range(self.n)]


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


def matrix(model: LinearModel) -> Matrix:
    """The model's matrix view, built on first use and cached on the model."""
    cached = getattr(model, "_matrix", None)  # the cache slot LinearModel declares
    if cached is None or cached.key != _key(model):
        cached = Matrix(model)
        model._matrix = cached
    return cached
