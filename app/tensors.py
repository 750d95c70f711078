"""Request values to the model's input: float32 `[batch, n_features]`, or a ProtocolError naming what is wrong."""
from __future__ import annotations

from typing import Any

import numpy as np

from app.errors import ProtocolError

# Number kinds a client may send (ints and floats); bools, strings and nulls are refused, not coerced.
_NUMERIC = frozenset("iuf")
_KINDS = {"U": "strings", "S": "strings", "b": "booleans", "O": "nulls, objects or mixed values"}


def numeric(value: Any, where: str) -> np.ndarray:
    """`value` (nested lists of numbers) as an array; `where` names the request field in messages."""
    try:
        array = np.asarray(value)
    except ValueError as e:
        # numpy's word for a ragged list is "inhomogeneous"; callers think in rows.
        raise ProtocolError(400, f"{where}: rows have different lengths or nesting ({e})") from None
    if array.dtype.kind not in _NUMERIC:
        raise ProtocolError(400, f"{where}: values must be numbers, got {_KINDS.get(array.dtype.kind, str(array.dtype))}")
    return array


def as_rows(value: Any, n_features: int, max_batch: int, where: str) -> np.ndarray:
    """A list of rows (or one row) of `n_features` numbers, as checked float32 rows."""
    array = numeric(value, where)
    if array.size == 0:
        raise ProtocolError(400, f"{where}: empty batch, send at least one row")
    if array.ndim == 1 and array.size == n_features:
        array = array[np.newaxis]
    if array.ndim != 2 or array.shape[1] != n_features:
        raise ProtocolError(400, f"{where}: expected shape [batch, {n_features}], got {list(array.shape)}")
    return checked(array, max_batch, where)


def checked(array: np.ndarray, max_batch: int, where: str) -> np.ndarray:
    """A 2-D numeric array as contiguous float32, refusing empty, oversized and non-finite batches."""
    if array.shape[0] == 0:
        raise ProtocolError(400, f"{where}: empty batch, send at least one row")
    if array.shape[0] > max_batch:
        raise ProtocolError(400, f"{where}: batch of {array.shape[0]} rows is over the limit of {max_batch} (MAX_BATCH)")
    rows = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(rows).all():
        raise ProtocolError(400, f"{where}: values must be finite float32 numbers (NaN, infinity or out of range)")
    return rows
