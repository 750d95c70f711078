"""Every endpoint of both protocols, answering with the model's own predictions."""
from __future__ import annotations

import numpy as np
import pytest

N_FEATURES, N_CLASSES = 64, 10


def test_tfserving_status_and_metadata(server):
    for path in ("/v1/models/model", "/v1/models/model/versions/1"):
        status = server.client.get(path)
        assert status.status_code == 200
        assert status.json()["model_version_status"][0] == {
            "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    for path in ("/v1/models/model/metadata", "/v1/models/model/versions/1/metadata"):
        meta = server.client.get(path).json()
        assert meta["model_spec"] == {"name": "model", "signature_name": "", "version": "1"}
        signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        (inp,) = signature["inputs"].values()
        (out,) = signature["outputs"].values()
        assert [d["size"] for d in inp["tensor_shape"]["dim"]] == ["-1", str(N_FEATURES)]
        assert [d["size"] for d in out["tensor_shape"]["dim"]] == ["-1", str(N_CLASSES)]


def test_tfserving_predict_row_format_equals_model(server, digits, reference):
    tflite, keras = reference
    rows = digits[:32]
    answer = server.client.post("/v1/models/model:predict", json={"instances": rows.tolist()})
    assert answer.status_code == 200, answer.text
    predictions = np.asarray(answer.json()["predictions"], dtype=np.float32)
    # float32 survives the JSON round trip exactly: the server's answer is the interpreter's, bit for bit.
    np.testing.assert_array_equal(predictions, tflite(rows))
    np.testing.assert_allclose(predictions, keras(rows), atol=1e-5)
    assert (predictions.argmax(1) == keras(rows).argmax(1)).all()


def test_tfserving_predict_named_rows_columnar_and_versioned(server, digits, reference):
    tflite, _ = reference
    rows = digits[40:45]
    input_name = next(iter(server.client.get("/v1/models/model/metadata").json()
                           ["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]))
    expected = tflite(rows)
    named = server.client.post("/v1/models/model:predict", json={"instances": [{input_name: r} for r in rows.tolist()]})
    columnar = server.client.post("/v1/models/model:predict", json={"inputs": rows.tolist()})
    columnar_named = server.client.post("/v1/models/model:predict", json={"inputs": {input_name: rows.tolist()}})
    versioned = server.client.post("/v1/models/model/versions/1:predict",
                                   json={"signature_name": "serving_default", "instances": rows.tolist()})
    np.testing.assert_array_equal(np.asarray(named.json()["predictions"], np.float32), expected)
    np.testing.assert_array_equal(np.asarray(columnar.json()["outputs"], np.float32), expected)
    np.testing.assert_array_equal(np.asarray(columnar_named.json()["outputs"], np.float32), expected)
    np.testing.assert_array_equal(np.asarray(versioned.json()["predictions"], np.float32), expected)


def test_tfserving_single_instance(server, digits, reference):
    tflite, _ = reference
    answer = server.client.post("/v1/models/model:predict", json={"instances": [digits[7].tolist()]})
    np.testing.assert_array_equal(np.asarray(answer.json()["predictions"], np.float32), tflite(digits[7:8]))


def test_v2_server_health_and_metadata(server):
    assert server.client.get("/v2").json() == {"name": "modelship", "version": "0.1.0", "extensions": []}
    assert server.client.get("/v2/health/live").json() == {"live": True}
    assert server.client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2/models/model", "/v2/models/model/versions/1"):
        meta = server.client.get(path).json()
        assert meta["name"] == "model" and meta["versions"] == ["1"] and meta["platform"] == "tflite_litert"
        assert meta["inputs"][0]["shape"] == [-1, N_FEATURES] and meta["inputs"][0]["datatype"] == "FP32"
        assert meta["outputs"][0]["shape"] == [-1, N_CLASSES]
    for path in ("/v2/models/model/ready", "/v2/models/model/versions/1/ready"):
        answer = server.client.get(path)
        assert answer.status_code == 200 and answer.json() == {"name": "model", "ready": True}


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_v2_infer_equals_model(server, digits, reference, nested):
    tflite, keras = reference
    rows = digits[100:132]
    data = rows.tolist() if nested else rows.ravel().tolist()
    request = {"id": "req-7", "inputs": [{"name": "features", "shape": [32, N_FEATURES], "datatype": "FP32", "data": data}]}
    answer = server.client.post("/v2/models/model/infer", json=request)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == "model" and body["model_version"] == "1" and body["id"] == "req-7"
    (out,) = body["outputs"]
    assert out["shape"] == [32, N_CLASSES] and out["datatype"] == "FP32"
    probabilities = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    np.testing.assert_array_equal(probabilities, tflite(rows))
    np.testing.assert_allclose(probabilities, keras(rows), atol=1e-5)


def test_v2_infer_versioned_integer_input_and_requested_output(server, digits, reference):
    tflite, _ = reference
    rows = digits[:3]
    output_name = server.client.get("/v2/models/model").json()["outputs"][0]["name"]
    request = {"inputs": [{"name": "features", "shape": [3, N_FEATURES], "datatype": "INT32", "data": rows.astype(int).tolist()}],
               "outputs": [{"name": output_name}]}
    answer = server.client.post("/v2/models/model/versions/1/infer", json=request)
    assert answer.status_code == 200, answer.text
    (out,) = answer.json()["outputs"]
    assert out["name"] == output_name
    np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(3, N_CLASSES), tflite(rows))


def test_openapi_describes_every_route(server):
    from app.server import OPERATIONS

    doc = server.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for op in OPERATIONS:
        assert op.method.lower() in doc["paths"][op.path], f"{op.method} {op.path} missing from /openapi.json"
    schemas = doc["components"]["schemas"]
    for name in ("InferenceRequest", "InferenceResponse", "PredictRequest", "PredictResponse", "Error"):
        assert name in schemas
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InferenceRequest"}
    assert "408" in infer["responses"] and "413" in infer["responses"]


@pytest.mark.parametrize("method", ["classify", "regress"])
@pytest.mark.parametrize("version", ["", "/versions/1"])
def test_classify_and_regress_say_predict_only(server, method, version):
    """TF Serving clients learn why, instead of a bare 404."""
    answer = server.client.post(f"/v1/models/model{version}:{method}", json={"examples": [{"x": 1.0}]})
    assert answer.status_code == 501, answer.text
    assert answer.json()["error"] == (f"{method} is not served: model 'model' is served through :predict only "
                                      "(POST /v1/models/model:predict with `instances` or `inputs`)")
    assert server.client.post(f"/v1/models/other:{method}", json={}).status_code == 404
