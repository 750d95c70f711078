"""Users' own models served by their signature and task: an 8x8x1 CNN, binary breast cancer, diabetes regression
(examples/), a 28x28x1 input and int32 token ids (tests/app/projects/). Answers are the TFLite file's, bit for bit."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import jsonschema
import numpy as np
import pytest

from app_metrics import feature_bins, prediction_counts, report, scrape, series
from app_server import Server, tflite_outputs

PROJECTS = ["cnn", "breast_cancer", "diabetes", "wide", "tokens"]


@pytest.fixture(scope="module", params=PROJECTS)
def served(request, project_entry) -> Iterator[tuple[Path, Server]]:
    entry = project_entry(request.param)
    running = Server(entry)
    yield entry, running
    running.stop()


def inputs(entry: Path, n: int, seed: int = 0) -> np.ndarray:
    """`n` instances of the model's input, monitored features spread over (and past) their reference bins."""
    r = report(entry)
    spec = r["signature"]["input"]
    rng = np.random.default_rng(seed)
    if spec["dtype"] == "int32":
        return rng.integers(0, 30, size=(n, *spec["shape"])).astype(np.int32)
    flat = rng.normal(0.0, 1.0, size=(n, math.prod(spec["shape"])))
    for feature in r["reference"]["features"]:
        edges = feature["edges"] or [0.0]
        span = edges[-1] - edges[0] or 1.0
        flat[:, feature["index"]] = rng.uniform(edges[0] - 0.2 * span, edges[-1] + 0.2 * span, size=n)
    return flat.reshape(n, *spec["shape"]).astype(np.float32)


def test_metadata_follows_the_signature(served):
    entry, running = served
    signature = report(entry)["signature"]
    meta = running.client.get("/v1/models/model/metadata").json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    for side in ("input", "output"):
        tensor = signature[side]
        (described,) = meta[side + "s"].values()
        assert described["name"] == tensor["name"]
        assert described["dtype"] == {"float32": "DT_FLOAT", "int32": "DT_INT32"}[tensor["dtype"]]
        assert [int(d["size"]) for d in described["tensor_shape"]["dim"]] == [-1, *tensor["shape"]]
    v2 = running.client.get("/v2/models/model").json()
    assert v2["inputs"] == [{"name": signature["input"]["name"], "shape": [-1, *signature["input"]["shape"]],
                             "datatype": {"float32": "FP32", "int32": "INT32"}[signature["input"]["dtype"]]}]
    assert v2["outputs"] == [{"name": signature["output"]["name"], "shape": [-1, *signature["output"]["shape"]],
                              "datatype": "FP32"}]


def test_every_request_form_answers_as_the_model(served):
    entry, running = served
    signature = report(entry)["signature"]
    name, dtype = signature["input"]["name"], signature["input"]["dtype"]
    batch = inputs(entry, 5)
    expected = tflite_outputs(entry, batch)
    assert expected.shape == (5, *signature["output"]["shape"])
    rows = batch.tolist()
    datatype = {"float32": "FP32", "int32": "INT32"}[dtype]
    answers = {
        "instances": running.client.post("/v1/models/model:predict", json={"instances": rows}).json()["predictions"],
        "named instances": running.client.post("/v1/models/model:predict",
                                               json={"instances": [{name: row} for row in rows]}).json()["predictions"],
        "inputs": running.client.post("/v1/models/model:predict", json={"inputs": rows}).json()["outputs"],
        "named inputs": running.client.post("/v1/models/model/versions/1:predict", json={"inputs": {name: rows}}).json()["outputs"],
    }
    for nested in (False, True):
        body = {"inputs": [{"name": name, "shape": list(batch.shape), "datatype": datatype,
                            "data": rows if nested else batch.ravel().tolist()}]}
        (out,) = running.client.post("/v2/models/model/infer", json=body).json()["outputs"]
        assert out["shape"] == list(expected.shape) and out["name"] == signature["output"]["name"]
        answers[f"v2 {'nested' if nested else 'flat'}"] = np.reshape(out["data"], out["shape"]).tolist()
    for form, answer in answers.items():
        np.testing.assert_array_equal(np.asarray(answer, dtype=np.float32), expected, err_msg=form)


def test_openapi_states_the_input(served):
    entry, running = served
    signature = report(entry)["signature"]
    schemas = running.client.get("/openapi.json").json()["components"]["schemas"]
    batch = inputs(entry, 2).tolist()
    name = signature["input"]["name"]
    good = {"PredictRequest": [{"instances": batch}, {"inputs": {name: batch}}],
            "InferenceRequest": [{"inputs": [{"name": name, "shape": [2, *signature["input"]["shape"]],
                                              "datatype": "INT32" if signature["input"]["dtype"] == "int32" else "FP32",
                                              "data": batch}]}]}
    wrong_size = [row[:-1] for row in batch]  # one value short in the input's first dimension
    bad = {"PredictRequest": [{"instances": wrong_size}, {"inputs": {"x": batch}}, {"instances": batch, "inputs": batch}],
           "InferenceRequest": [{"inputs": [{**good["InferenceRequest"][0]["inputs"][0], "name": "x"}]},
                                {"inputs": [{**good["InferenceRequest"][0]["inputs"][0], "data": wrong_size}]}]}
    for schema_name, bodies in good.items():
        for body in bodies:
            jsonschema.validate(body, schemas[schema_name], cls=jsonschema.Draft202012Validator)
            path = "/v1/models/model:predict" if schema_name == "PredictRequest" else "/v2/models/model/infer"
            assert running.client.post(path, json=body).status_code == 200
    for schema_name, bodies in bad.items():
        for body in bodies:
            assert not jsonschema.Draft202012Validator(schemas[schema_name]).is_valid(body), body
            path = "/v1/models/model:predict" if schema_name == "PredictRequest" else "/v2/models/model/infer"
            assert running.client.post(path, json=body).status_code == 400


def test_drift_series_count_the_traffic_and_stay_bounded(served):
    entry, _ = served
    r = report(entry)
    running = Server(entry)  # a fresh server: its counters hold this test's traffic only
    try:
        sent = [inputs(entry, n, seed) for seed, n in enumerate((1, 7, 32))]
        for batch in sent:
            assert running.client.post("/v1/models/model:predict", json={"instances": batch.tolist()}).status_code == 200
        batch = np.concatenate(sent)
        samples = scrape(running)
    finally:
        running.stop()
    assert samples[("modelship_input_rows_total", ())] == len(batch)
    counted = {(dict(k)["feature"], dict(k)["bin"]): v for k, v in series(samples, "modelship_input_feature_bin_total").items()}
    assert counted == feature_bins(entry, batch)
    name, expected = prediction_counts(entry, tflite_outputs(entry, batch))
    assert series(samples, name) == expected
    monitor = r["config"]["monitor"]
    drift_inputs = len(counted) + len(series(samples, "modelship_reference_feature_bin_ratio"))
    per_task = {"regression": ("modelship_prediction_bin_total", "modelship_reference_prediction_bin_ratio"),
                "multiclass": ("modelship_predictions_total", "modelship_reference_class_ratio"),
                "binary": ("modelship_predictions_total", "modelship_reference_class_ratio")}[r["task"]]
    drift_predictions = sum(len(series(samples, n)) for n in per_task)
    width = math.prod(r["signature"]["input"]["shape"])
    print(f"{r['task']} input {r['signature']['input']['shape']} ({width} values): {drift_inputs} input drift series "
          f"(bound {2 * monitor['features'] * monitor['bins']}), {drift_predictions} prediction series")
    assert drift_inputs <= 2 * monitor["features"] * monitor["bins"]
    bound = 2 * monitor["bins"] if r["task"] == "regression" else 2 * r["data"]["n_classes"]
    assert drift_predictions <= bound
    info = next(dict(k) for k in series(samples, "modelship_model_info"))
    assert info["task"] == r["task"] and info["model_id"] == r["model_id"]


@pytest.fixture(scope="module")
def tokens(project_entry) -> Iterator[Server]:
    running = Server(project_entry("tokens"))
    yield running
    running.stop()


TOKENS = [[3] * 12]


@pytest.mark.parametrize("body,words", [
    ({"instances": [[3.5] + [3] * 11]}, "the model's input 'tokens' is int32 (token ids): send integers, not fractions"),
    ({"instances": [[2**31] + [3] * 11]}, "values must be int32 numbers (-2147483648 to 2147483647)"),
    ({"instances": [[-2**31 - 1] + [3] * 11]}, "values must be int32 numbers"),
    ({"instances": [[True] + [3] * 11]}, "values must be numbers, got booleans"),
    ({"instances": [[30] * 12]}, "the model cannot compute this input: gather index out of bounds"),
    ({"inputs": [{"name": "tokens", "shape": [1, 12], "datatype": "FP32", "data": TOKENS}]},
     "datatype 'FP32' is not accepted; the model takes INT32 (or INT8, INT16, INT64, UINT8, UINT16, UINT32, UINT64)"),
    ({"inputs": [{"name": "tokens", "shape": [1, 12], "datatype": "INT64", "data": [[0.5] * 12]}]}, "not fractions"),
], ids=["fraction", "past-int32", "below-int32", "boolean", "past-vocabulary", "v2-float-datatype", "v2-fraction"])
def test_int32_input_takes_integers_only(tokens, body, words):
    path = "/v2/models/model/infer" if isinstance(body.get("inputs"), list) else "/v1/models/model:predict"
    answer = tokens.client.post(path, json=body)
    assert answer.status_code == 400 and words in answer.json()["error"], answer.text


def test_int32_input_takes_integral_numbers_as_json_schema_does(tokens):
    """`3.0` is an `integer` to JSON Schema (and so to /openapi.json): the server takes it as 3."""
    as_ints = tokens.client.post("/v1/models/model:predict", json={"instances": TOKENS}).json()
    as_floats = tokens.client.post("/v1/models/model:predict", content=b'{"instances": [[' + b", ".join([b"3.0"] * 12) + b"]]}")
    assert as_floats.status_code == 200 and as_floats.json() == as_ints
    v2 = tokens.client.post("/v2/models/model/infer", json={"inputs": [
        {"name": "tokens", "shape": [1, 12], "datatype": "UINT8", "data": TOKENS[0]}]})
    assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == as_ints["predictions"][0]
