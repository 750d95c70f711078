"""/openapi.json is exactly as strict as the server (issue 14.4), property-based over the served model's own schemas.

For each request body (TF Serving predict, V2 infer) of a float32 [10] and an int32 [12] model, each example:
- draws a body from the schema (hypothesis-jsonschema): the server must serve it (200). A V2 body's `shape[0]`
  is first set to the batch its `data` holds: the one rule JSON Schema cannot state (the description does);
  the model itself may refuse what no schema knows (token ids past its vocabulary: LiteRT fails, a 400);
- changes that body once (a value replaced by any JSON value or a number at a bound, a key or item removed or
  added): the server must answer 200 when the schema still accepts it and 400 when it does not.
Never a 5xx. Bounded: MAX_BATCH=3 keeps bodies small; EXAMPLES examples per body and model.
"""
from __future__ import annotations

import copy
import json
import math
from typing import Any, Iterator

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from app_server import Server

MAX_BATCH = 3
EXAMPLES = 100
MODEL_REFUSED = "the model cannot compute this input"
OPERATIONS = {"predict": ("/v1/models/model:predict", "PredictRequest"), "infer": ("/v2/models/model/infer", "InferenceRequest")}
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Numbers on either side of the schema's bounds, and the fraction/integral pair that int32 inputs tell apart.
EDGES = [FLOAT32_MAX, float(np.nextafter(FLOAT32_MAX, np.inf)), -FLOAT32_MAX, 1e39, 2**31 - 1, 2**31, -2**31, -2**31 - 1,
         0.5, 3.0, -0.0, 0, 1, MAX_BATCH, MAX_BATCH + 1, 64, 12, "", "serving_default", "features", "tokens", "output_0",
         "FP32", "INT32", True, False, None, [], {}]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4) | st.sampled_from(EDGES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=2),
    max_leaves=4,
)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


# The tokens model's vocabulary (tests/app/projects/tokens): ids past it are refused by the model, not the schema.
VOCABULARY = {"diabetes": None, "tokens": 30}


@pytest.fixture(scope="module", params=sorted(VOCABULARY))
def fuzzed(request, project_entry) -> Iterator[tuple[Server, dict[str, Any], int | None]]:
    running = Server(project_entry(request.param), env={"MAX_BATCH": str(MAX_BATCH)})
    yield running, running.client.get("/openapi.json").json()["components"]["schemas"], VOCABULARY[request.param]
    running.stop()


def draft7(schema: Any) -> Any:
    """OpenAPI 3.1's JSON Schema (2020-12) tuples in draft 7's words, which hypothesis-jsonschema speaks."""
    if isinstance(schema, list):
        return [draft7(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: draft7(v) for k, v in schema.items()}
    if "prefixItems" in out:
        out["additionalItems"] = out.pop("items", True)
        out["items"] = out.pop("prefixItems")
    return out


def expected(operation: str, body: Any, validator: jsonschema.Draft202012Validator) -> int:
    if not validator.is_valid(body):
        return 400
    if operation == "infer":
        (tensor,) = body["inputs"]
        if np.asarray(tensor["data"]).size != math.prod(tensor["shape"]):
            return 400  # beyond JSON Schema: the schema's description states it
    return 200


def post(server: Server, operation: str, body: Any) -> tuple[int, str]:
    answer = server.client.post(OPERATIONS[operation][0], content=json.dumps(body), headers={"content-type": "application/json"})
    return answer.status_code, answer.text


def mutated(data: st.DataObject, document: Any) -> Any:
    """`document` with one change at a random place: replaced (by any JSON value, or by another number), removed,
    or with a sibling added."""
    document = copy.deepcopy(document)
    parent, key, node = None, None, document
    while isinstance(node, (dict, list)) and node and data.draw(st.integers(0, 3), label="descend") > 0:
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))), label="key")
        parent, node = node, node[key]
    action = data.draw(st.sampled_from(["replace", "remove", "add", "renumber"]), label="action")
    if action == "renumber":  # another ordinary number: mostly a change the schema still accepts
        if parent is None or isinstance(node, bool) or not isinstance(node, (int, float)):
            return document
        parent[key] = data.draw(st.integers(0, 29) | st.floats(-100, 100), label="number")
        return document
    if parent is None or (action == "add" and not isinstance(node, (dict, list))):
        return data.draw(JSON, label="document") if parent is None else _set(parent, key, data.draw(JSON, label="value"))
    if action == "replace":
        parent[key] = data.draw(JSON, label="value")
    elif action == "remove":
        del parent[key]
    elif isinstance(node, dict):
        node[data.draw(st.text(max_size=8), label="new key")] = data.draw(JSON, label="value")
    else:
        node.insert(data.draw(st.integers(0, len(node)), label="at"), data.draw(JSON, label="value"))
    return document


def _set(parent: Any, key: Any, value: Any) -> None:
    parent[key] = value


def consistent(operation: str, body: Any, vocabulary: int | None) -> Any:
    """A drawn body within the rules no schema states: a V2 `shape[0]` the batch its `data` holds (whole
    instances of flat data only), and token ids within the model's vocabulary (so the model computes them)."""
    if operation == "infer":
        (tensor,) = body["inputs"]
        data, per = tensor["data"], math.prod(tensor["shape"][1:])
        if data and isinstance(data[0], list):
            tensor["shape"][0] = len(data)
        else:
            tensor["shape"][0] = len(data) // per
            tensor["data"] = data[: tensor["shape"][0] * per]
        tensor["data"] = _within(tensor["data"], vocabulary)
    else:
        body = {k: v if k == "signature_name" else _within(v, vocabulary) for k, v in body.items()}
    return body


def _within(value: Any, vocabulary: int | None) -> Any:
    if vocabulary is None or isinstance(value, bool):
        return value
    if isinstance(value, list):
        return [_within(v, vocabulary) for v in value]
    if isinstance(value, dict):
        return {k: _within(v, vocabulary) for k, v in value.items()}
    return type(value)(value % vocabulary) if isinstance(value, (int, float)) else value


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_server_and_schema_agree(fuzzed, operation):
    server, schemas, vocabulary = fuzzed
    schema = schemas[OPERATIONS[operation][1]]
    validator = jsonschema.Draft202012Validator(schema)
    bodies = from_schema(draft7(schema)).map(lambda body: consistent(operation, body, vocabulary))
    drawn: dict[str, int] = {}
    changed: dict[str, int] = {}

    def check(body: Any, outcomes: dict[str, int]) -> int:
        status, text = post(server, operation, body)
        if status == 400 and MODEL_REFUSED in text and validator.is_valid(body):
            outcomes["model refused"] = outcomes.get("model refused", 0) + 1
            return 200  # the model's own rule, beyond any schema (a token id past the vocabulary)
        outcomes[str(status)] = outcomes.get(str(status), 0) + 1
        assert status == expected(operation, body, validator), f"{status} {text}\nbody: {json.dumps(body)[:2000]}"
        return status

    @SETTINGS
    @given(st.data())
    def agree(data: st.DataObject) -> None:
        body = data.draw(bodies, label="body from the schema")
        assert validator.is_valid(body) and check(body, drawn) == 200
        check(mutated(data, body), changed)

    agree()
    print(f"{operation}: bodies drawn from the schema answered {drawn}, changed ones {changed}")
    # Both answers occur: changes the schema still accepts, and changes it refuses.
    assert changed.get("200", 0) + changed.get("model refused", 0) >= 1 and changed.get("400", 0) >= EXAMPLES // 4, changed
    assert set(drawn) == {"200"}, drawn  # each drawn body computed by the model
