"""Chvátal-Gomory roundings of the pool capacity rows: rows every plan meets, that the LP needs.

A pool row ``sum g_i x_i <= C`` (GPUs of each placement running in a period, the pool's GPUs)
divided by a job size ``d`` and rounded down, ``sum floor(g_i / d) x_i <= floor(C / d)``, holds
for every 0/1 ``x`` that meets the row (its left side is an integer at most ``C / d``), but cuts
off fractional points when ``d`` does not divide ``C``: with 15 GPUs and 8-GPU jobs the LP runs
15/8 of them at once, a plan one. The divisors tried are the row's sizes and their greatest
common divisor (which makes the rounding an exact reformulation of the row); of those that cut,
the ``PER_ROW`` with the largest fractional part ``C / d - floor(C / d)`` are kept, if each
takes at least ``MIN_CUT`` of the pool away (``C mod d`` GPUs), on pools of at most
``SMALL_POOL`` GPUs.

Measured (the default ``gpualloc solve F``, 60 s): a held-out Philly replay with a fleet at
0.5% (pools of 15, 11 and 8 GPUs, jobs of 4 and 8 GPUs; 358k placements): 3,592.20 / 4,233.01
(15.1%) -> 3,605.20 / 3,613.32 (0.22%; with the roundings capped at a quarter of the
nonzeros, 3,602.36 / 3,761.35). On pools of any size, a held-out tight shape with pools x0.35
(716, 358, 246 GPUs; roundings on 17-21% of the nonzeros) lost 0.3-1.7% of its plan in three
runs (its LP took 24.7 s instead of 15.0 s and moved 0.16%), large-wide was unchanged (1.5%)
and the tight Philly replay (160 GPUs) was proven in 8.7 s against 14.9 s; hence
``SMALL_POOL``.

The rows have kind ``rounding``; ``build`` adds them unless asked not to (LP duals of the pool
rows and the infeasibility analysis see the plain rows). Their nonzeros are capped at
``NNZ_SHARE`` times the model's (or ``MIN_BUDGET``): the replay above needed 57% more.
"""

from __future__ import annotations

import math

import numpy as np

from .linear import LinearModel, Row
from .matrix import job_numbers

PER_ROW = 2  # roundings kept per pool row (the strongest)
# only pools of at most this many GPUs in the period (a few machines, where a job's GPU count
# is a large share of the pool): on bigger pools they cost more than they gave (below)
SMALL_POOL = 64
NNZ_SHARE, MIN_BUDGET = 1.0, 100_000  # their nonzeros: at most this share of the model's
# a rounding by d only when it takes at least this share of the pool away from the items of d
# GPUs or more (``C mod d >= MIN_CUT * C``; held-out tight shape with pools x0.35, 716 GPUs
# and 16-GPU jobs: roundings on 20% of the nonzeros moved the LP 0.16% and slowed the search)
MIN_CUT = 0.1


def rounding_rows(model: LinearModel, check=lambda: None) -> list[Row]:
    """The roundings of ``model``'s pool capacity rows (see the module doc)."""
    job_of = job_numbers(model)  # the matrix is built after these rows are added
    budget = max(MIN_BUDGET, NNZ_SHARE * sum(len(r.vars) for r in model.rows))
    out: list[Row] = []
    for n, row in enumerate(model.rows):
        if n % 256 == 0:
            check()
        if row.kind != "capacity" or row.sense != "<=" or len(row.key) != 3:
            continue
        coefs = np.frombuffer(row.coefs, np.float64)
        if not len(coefs) or not 1 <= row.rhs <= SMALL_POOL or \
                not float(row.rhs).is_integer() or not np.all(coefs == np.round(coefs)) or \
                coefs.min() < 1:
            continue
        cols = np.frombuffer(row.vars, np.int32)
        for d, cut, keep in _strongest(coefs, int(row.rhs), job_of[cols]):
            if budget < keep.sum():
                return out
            budget -= keep.sum()
            cluster, accelerator, t = row.key
            out.append(Row("rounding", f"rounding[{cluster},{accelerator},{d},{t}]",
                           cols[keep], cut[keep], "<=", float(int(row.rhs) // d),
                           (cluster, accelerator, t, d)))
    return out


def _strongest(coefs: np.ndarray, rhs: int,
               jobs: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Up to ``PER_ROW`` divisors ``(d, rounded coefficients, their nonzero mask)`` that cut,
    strongest first; a rounding whose jobs' largest terms sum to at most its right side can
    never bind and is left out."""
    sizes = {int(c) for c in np.unique(coefs)}
    sizes.add(math.gcd(*sizes))
    found = []
    for d in sorted(sizes):
        if d <= 1 or d > rhs or rhs % d == 0:
            continue
        if rhs % d < MIN_CUT * rhs:
            continue  # it takes too little of the pool away to be worth its nonzeros
        cut = np.floor(coefs / d)
        keep = cut > 0
        most = np.zeros(int(jobs.max()) + 1)
        np.maximum.at(most, jobs[keep], cut[keep])
        if most.sum() <= rhs // d:
            continue
        found.append((-(rhs / d - rhs // d), d, cut, keep))
    found.sort(key=lambda f: (f[0], -f[1]))
    return [(d, cut, keep) for _, d, cut, keep in found[:PER_ROW]]
