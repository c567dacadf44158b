"""The model's rows store compact arrays, and the shared matrix reads them unchanged."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
from hypothesis import given, settings

from gpualloc.models import Instance
from gpualloc.optimizer import build
from gpualloc.optimizer.model.linear import Row, float_array, int_array
from tests.strategies import instances


@pytest.mark.parametrize("vars_", [[3, 1, 7], np.array([3, 1, 7]), range(3, 0, -1),
                                   np.array([3, 1, 7], np.int32)])
def test_row_stores_any_sequence_as_arrays(vars_) -> None:
    row = Row("capacity", "r", vars_, np.array([1.5, 2, 3]), "<=", 4.0)
    assert isinstance(row.vars, array) and row.vars.typecode == "i"
    assert isinstance(row.coefs, array) and row.coefs.typecode == "d"
    assert list(row.vars) == [int(v) for v in vars_]
    assert list(row.coefs) == [1.5, 2.0, 3.0]
    assert all(type(v) is int for v in row.vars)  # iterates as Python numbers, like a list


def test_assigning_a_list_stores_an_array() -> None:
    row = Row("capacity", "r", [0], [1.0], "<=", 1.0)
    row.vars, row.coefs = [4, 5], np.array([2.0, 3.0])
    assert isinstance(row.vars, array) and row.vars.tolist() == [4, 5]
    assert isinstance(row.coefs, array) and row.coefs.tolist() == [2.0, 3.0]


def test_row_with_unequal_lengths_is_refused() -> None:
    with pytest.raises(ValueError, match="2 vars, 1 coefs"):
        Row("credits", "credits[a]", [0, 1], [2.0], "<=", 1.0)


def test_an_index_beyond_int32_is_refused_not_wrapped() -> None:
    with pytest.raises(OverflowError):
        int_array(np.array([0, 2**31]))
    with pytest.raises(OverflowError):
        int_array([2**31])
    assert int_array(np.array([2**31 - 1])).tolist() == [2**31 - 1]


def test_arrays_are_kept_not_copied() -> None:
    a, c = array("i", [1, 2]), array("d", [1.0, 2.0])
    assert int_array(a) is a and float_array(c) is c


@given(instances())
@settings(max_examples=40, deadline=None)
def test_matrix_holds_exactly_the_rows(inst: Instance) -> None:
    model = build(inst)
    mat = model.matrix()
    assert mat.nnz == sum(len(r.vars) for r in model.rows)
    for k, row in enumerate(model.rows):
        assert isinstance(row.vars, array) and isinstance(row.coefs, array)
        a, b = mat.row_ptr[k], mat.row_ptr[k + 1]
        assert mat.cols[a:b].tolist() == list(row.vars), row.name
        assert mat.vals[a:b].tolist() == list(row.coefs), row.name
        assert all(0 <= v < model.num_vars for v in row.vars)
