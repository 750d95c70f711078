"""Bad input never crashes or hangs the server: each case answers in the protocol's error format, naming the problem
(and a few near misses that are fine)."""
from __future__ import annotations

import socket

import pytest

from app_server import Server

TF = "/v1/models/model:predict"
V2 = "/v2/models/model/infer"
ROW = [1.0] * 64


def v2(data, shape=(1, 64), datatype="FP32", **extra):
    return {"inputs": [{"name": "features", "shape": list(shape), "datatype": datatype, "data": data}], **extra}


# (id, path, raw body or JSON-able, status, words the message must contain)
CASES = [
    ("tf-malformed-json", TF, b'{"instances": [[1, 2', 400, "malformed JSON"),
    ("tf-not-object", TF, b"[1, 2, 3]", 400, "JSON object"),
    ("tf-empty-body", TF, b"", 400, "empty request body"),
    ("tf-neither-format", TF, {}, 400, "exactly one of"),
    ("tf-both-formats", TF, {"instances": [ROW], "inputs": [ROW]}, 400, "exactly one of"),
    ("tf-unknown-field", TF, {"instance": [ROW]}, 400, "instance"),
    ("tf-wrong-signature", TF, {"signature_name": "other", "instances": [ROW]}, 400, "'other'"),
    ("tf-wrong-feature-count", TF, {"instances": [[1.0] * 63]}, 400, "[batch, 64]"),
    ("tf-wrong-rank", TF, {"instances": [[ROW]]}, 400, "[batch, 64]"),
    ("tf-ragged", TF, {"instances": [ROW, [1.0] * 3]}, 400, "different lengths"),
    ("tf-strings", TF, {"instances": [["1.0"] * 64]}, 400, "strings"),
    ("tf-booleans", TF, {"instances": [[True] * 64]}, 400, "booleans"),
    ("tf-nulls", TF, {"instances": [[None] * 64]}, 400, "nulls"),
    ("tf-nan", TF, b'{"instances": [[NaN' + b", 1.0" * 63 + b"]]}", 400, "malformed JSON"),
    ("tf-overflow", TF, {"instances": [[1e39] * 64]}, 400, "finite"),
    ("tf-empty-batch", TF, {"instances": []}, 400, "empty batch"),
    ("tf-batch-over-limit", TF, {"instances": [ROW] * 257}, 400, "limit of 256"),
    ("tf-wrong-input-name", TF, {"inputs": {"pixels": [ROW]}}, 400, "one input named"),
    ("tf-fuzzer-find", TF, {"inputs": {}, "instances": [], "signature_name": None}, 400, "signature_name"),
    ("tf-null-signature", TF, {"signature_name": None, "instances": [ROW]}, 400, "signature_name: Input should be a valid string"),
    ("tf-null-instances", TF, {"instances": None}, 400, "values must be numbers, got nulls"),
    ("tf-unbatched-instance", TF, {"instances": ROW}, 400, "expected shape [batch, 64], got [64]"),
    ("tf-mixed-booleans", TF, {"instances": [[0.5] * 63 + [False]]}, 400, "values must be numbers, got booleans"),
    ("tf-huge-integer", TF, {"instances": [[2**70] + [1] * 63]}, 200, None),
    ("tf-past-float32", TF, {"instances": [[3.5e38] + [1] * 63]}, 400, "within ±3.4028235e+38"),
    ("tf-named-and-plain-rows", TF, {"instances": [{"features": ROW}, ROW]}, 400, "instances[1]: expected an object"),
    ("tf-unknown-model", "/v1/models/other:predict", {"instances": [ROW]}, 404, "other"),
    ("tf-unknown-version", "/v1/models/model/versions/9:predict", {"instances": [ROW]}, 404, "no version '9'"),
    ("tf-unknown-model-status", "/v1/models/other", None, 404, "other"),
    ("v2-malformed-json", V2, b'{"inputs": [', 400, "malformed JSON"),
    ("v2-missing-inputs", V2, {"id": "x"}, 400, "inputs: Field required"),
    ("v2-missing-shape", V2, {"inputs": [{"name": "x", "datatype": "FP32", "data": ROW}]}, 400, "shape: Field required"),
    ("v2-two-inputs", V2, {"inputs": v2(ROW)["inputs"] * 2}, 400, "one input"),
    ("v2-wrong-shape", V2, v2(ROW, shape=(1, 63)), 400, "[batch, 64]"),
    ("v2-shape-data-mismatch", V2, v2(ROW, shape=(2, 64)), 400, "needs 128 values"),
    ("v2-unknown-datatype", V2, v2(ROW, datatype="FLOAT"), 400, "not a V2 datatype"),
    ("v2-bytes-datatype", V2, v2(["a"] * 64, datatype="BYTES"), 400, "'BYTES' is not accepted"),
    ("v2-strings-as-fp32", V2, v2(["1"] * 64), 400, "strings"),
    ("v2-ragged", V2, v2([ROW, [1.0]], shape=(2, 64)), 400, "different lengths"),
    ("v2-infinity", V2, b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [Infinity]}]}', 400, "malformed JSON"),
    ("v2-overflow", V2, v2([3.5e38 * 10] * 64), 400, "finite"),
    ("v2-empty-batch", V2, v2([], shape=(0, 64)), 400, "empty batch"),
    ("v2-batch-over-limit", V2, v2(ROW * 300, shape=(300, 64)), 400, "limit of 256"),
    ("v2-unknown-output", V2, v2(ROW, outputs=[{"name": "logits"}]), 400, "unknown output 'logits'"),
    ("v2-wrong-input-name", V2, {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}, 400,
     "unknown input 'input': the model's input is named 'features'"),
    ("v2-empty-output-name", V2, {"inputs": [], "outputs": [{"name": ""}]}, 400, "one input"),
    ("v2-output-name-empty", V2, v2(ROW, outputs=[{"name": ""}]), 400, "unknown output ''"),
    ("v2-null-id", V2, v2(ROW, id=None), 400, "id: Input should be a valid string"),
    ("v2-null-outputs", V2, v2(ROW, outputs=None), 400, "outputs: Input should be a valid list"),
    ("v2-string-shape", V2, v2(ROW, shape=("1", "64")), 400, "shape.0: Input should be a valid integer"),
    ("v2-fractional-shape", V2, v2(ROW, shape=(1.5, 64)), 400, "shape.0"),
    ("v2-negative-batch", V2, v2(ROW, shape=(-1, 64)), 400, "shape must be [batch, 64]"),
    ("v2-mixed-booleans", V2, v2([1.5] * 63 + [True]), 400, "values must be numbers, got booleans"),
    ("v2-other-nesting", V2, v2([[1.0] * 32] * 4, shape=(2, 64)), 400, "flat or nested as shape [2, 64]"),
    ("v2-unknown-model", "/v2/models/other/infer", v2(ROW), 404, "'other' not found"),
    ("v2-unknown-version", "/v2/models/model/versions/2/infer", v2(ROW), 404, "no version '2'"),
    ("v2-unknown-model-ready", "/v2/models/other/ready", None, 404, "'other'"),
    ("unknown-path", "/v3/models/model/infer", v2(ROW), 404, "Not Found"),
]


@pytest.mark.parametrize("path,body,status,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request(server, path, body, status, words):
    if body is None:
        answer = server.client.get(path)
    elif isinstance(body, bytes):
        answer = server.client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        answer = server.client.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    if words is not None:
        message = answer.json()["error"]
        assert words in message, message


@pytest.mark.parametrize("method,path", [("GET", TF), ("PUT", V2), ("DELETE", "/v2/health/ready"), ("POST", "/v1/models/model")])
def test_wrong_method_is_405(server, method, path):
    answer = server.client.request(method, path)
    assert answer.status_code == 405
    assert "Method Not Allowed" in answer.json()["error"]
    assert answer.headers["allow"]


def test_oversized_body_is_refused_from_its_length(server):
    row = b"[" + b"1.0," * 63 + b"1.0]"
    body = b'{"instances": [' + b",".join([row] * 20_000) + b"]}"
    assert len(body) > 4 * 1024 * 1024
    answer = server.client.post(TF, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert "MAX_BODY_BYTES" in answer.json()["error"]


def test_oversized_chunked_body_is_refused_while_reading(server):
    """No Content-Length: the server counts as it reads and answers 413 before the client finishes sending."""
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/model/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" + b"1.0," * 16_000 + b"\n"
        answer = b""
        try:
            # Up to 64 MiB; a server that buffers everything would let all of it through.
            while sent < 64 * 1024 * 1024:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                sock.setblocking(False)
                try:
                    answer += sock.recv(65536)
                except BlockingIOError:
                    pass
                sock.setblocking(True)
                if answer:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024, f"server read {sent} bytes before refusing"


def test_binary_extension_is_refused(server):
    answer = server.client.post(V2, content=b"{}", headers={"inference-header-content-length": "2"})
    assert answer.status_code == 400 and "binary tensor data extension" in answer.json()["error"]


def test_still_serving_after_bad_input(server):
    assert server.client.get("/v2/health/ready").status_code == 200
    assert server.client.post(TF, json={"instances": [ROW]}).status_code == 200
    assert server.process.poll() is None


def test_small_body_limit_and_batch_limit_from_environment(entry):
    limited = Server(entry, env={"MAX_BODY_BYTES": "2048", "MAX_BATCH": "2"})
    try:
        assert limited.client.post(TF, json={"instances": [ROW] * 3}).json()["error"].endswith("limit of 2 (MAX_BATCH)")
        too_big = limited.client.post(TF, json={"instances": [[1.12345678] * 64] * 4})
        assert too_big.status_code == 413 and "2048" in too_big.json()["error"]
        assert limited.client.post(TF, json={"instances": [ROW] * 2}).status_code == 200
    finally:
        limited.stop()
