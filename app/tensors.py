"""Request values to the model's input batch `[batch, *shape]` of its dtype, or a ProtocolError naming what is wrong.

The rules here are the ones /openapi.json states (app/openapi.py), so that a body the document accepts is a
body the server accepts: numbers only (JSON Schema's `number`: no booleans, strings or nulls), float32
inputs within float32's range, int32 inputs integral (JSON Schema's `integer`: 3 and 3.0 alike) and in range.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from app.entry import Tensor
from app.errors import ProtocolError

FLOAT32_MAX = float(np.finfo(np.float32).max)
INT32_MIN, INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)

_NUMERIC = frozenset("iuf")
_JSON_NAMES = {bool: "booleans", str: "strings", type(None): "nulls", dict: "objects", list: "arrays"}


def dims(spec: Tensor) -> str:
    """`[batch, 8, 8, 1]`: the batch shape as messages write it."""
    return "[" + ", ".join(["batch", *map(str, spec.shape)]) + "]"


def numeric(value: Any, where: str, maybe_booleans: bool) -> np.ndarray:
    """`value` (nested lists of numbers) as a rectangular numeric array; `where` names the request field.

    `maybe_booleans`: the request body holds a `true` or `false` somewhere. numpy turns `[1.5, true]` into
    floats, so then (and only then: walking every value costs as much as the model) the leaves are checked.
    """
    try:
        array = np.asarray(value)
    except ValueError as e:
        # numpy's word for a ragged list is "inhomogeneous"; callers think in rows.
        raise ProtocolError(400, f"{where}: rows have different lengths or nesting ({e})") from None
    if array.dtype.kind == "O" or (maybe_booleans and array.dtype.kind in _NUMERIC):
        kinds = _leaf_types(value, array.ndim)
        others = sorted({_JSON_NAMES.get(t, t.__name__) for t in kinds - {int, float}})
        if others:
            raise ProtocolError(400, f"{where}: values must be numbers, got {', '.join(others)}")
        if array.dtype.kind == "O":  # integers past 64 bits: still numbers to JSON
            array = np.asarray(value, dtype=np.float64)
    if array.dtype.kind not in _NUMERIC:
        got = {"U": "strings", "S": "strings", "b": "booleans"}.get(array.dtype.kind, str(array.dtype))
        raise ProtocolError(400, f"{where}: values must be numbers, got {got}")
    return array


def _leaf_types(value: Any, depth: int) -> set[type]:
    leaves = [value] if depth == 0 else value
    for _ in range(depth - 1):
        leaves = itertools.chain.from_iterable(leaves)
    return set(map(type, leaves))


def batch(value: Any, spec: Tensor, max_batch: int, where: str, maybe_booleans: bool) -> np.ndarray:
    """A tensor `[batch, *spec.shape]` sent as nested lists, checked and converted to the model's dtype."""
    array = numeric(value, where, maybe_booleans)
    if array.ndim >= 1 and array.shape[0] == 0:
        raise ProtocolError(400, f"{where}: empty batch, send at least one instance")
    if list(array.shape[1:]) != spec.shape or array.ndim != 1 + len(spec.shape):
        raise ProtocolError(400, f"{where}: expected shape {dims(spec)}, got {list(array.shape)}")
    return checked(array, spec, max_batch, where)


def checked(array: np.ndarray, spec: Tensor, max_batch: int, where: str) -> np.ndarray:
    """A numeric `[batch, *spec.shape]` array as contiguous `spec.dtype`, refusing empty, oversized and out-of-range batches."""
    if array.shape[0] == 0:
        raise ProtocolError(400, f"{where}: empty batch, send at least one instance")
    if array.shape[0] > max_batch:
        raise ProtocolError(400, f"{where}: batch of {array.shape[0]} is over the limit of {max_batch} (MAX_BATCH)")
    if spec.dtype == "int32":
        if array.dtype.kind == "f" and not (np.floor(array) == array).all():
            raise ProtocolError(400, f"{where}: the model's input {spec.name!r} is int32 (token ids): send integers, not fractions")
        if array.min() < INT32_MIN or array.max() > INT32_MAX:
            raise ProtocolError(400, f"{where}: values must be int32 numbers ({INT32_MIN} to {INT32_MAX})")
        return np.ascontiguousarray(array, dtype=np.int32)
    if array.dtype.kind == "f" and not (np.abs(array) <= FLOAT32_MAX).all():
        raise ProtocolError(400, f"{where}: values must be finite float32 numbers (within ±{FLOAT32_MAX:.8g})")
    return np.ascontiguousarray(array, dtype=np.float32)
