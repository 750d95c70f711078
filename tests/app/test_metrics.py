"""/metrics after known traffic: the contract's names (docs/contracts.md), with values that add up."""
from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app_server import Server


def scrape(server: Server) -> dict[tuple[str, tuple], float]:
    text = server.client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def send_traffic(server: Server, digits: np.ndarray) -> np.ndarray:
    """Sends 7 + 32 + 1 rows through both protocols and one bad request; returns the rows sent."""
    batches = [digits[:7], digits[7:39], digits[39:40]]
    assert server.client.post("/v1/models/model:predict", json={"instances": batches[0].tolist()}).status_code == 200
    assert server.client.post("/v2/models/model/infer", json={"inputs": [
        {"name": "x", "shape": [32, 64], "datatype": "FP32", "data": batches[1].ravel().tolist()}]}).status_code == 200
    assert server.client.post("/v1/models/model/versions/1:predict", json={"inputs": batches[2].tolist()}).status_code == 200
    assert server.client.post("/v2/models/model/infer", json={"inputs": []}).status_code == 400
    return np.concatenate(batches)


def check(samples, rows: np.ndarray, probabilities: np.ndarray, entry, requests: int) -> None:
    report = json.loads((entry / "report.json").read_text())
    assert samples[("modelship_input_rows_total", ())] == len(rows)
    for i in (0, 5, 63):
        feature = (("feature", str(i)),)
        assert samples[("modelship_input_feature_sum", feature)] == pytest.approx(rows[:, i].astype(float).sum())
        assert samples[("modelship_input_feature_sum_squares", feature)] == pytest.approx((rows[:, i].astype(float) ** 2).sum())
        assert samples[("modelship_reference_feature_mean", feature)] == pytest.approx(report["reference"]["feature_mean"][i])
        assert samples[("modelship_reference_feature_std", feature)] == pytest.approx(report["reference"]["feature_std"][i])
    counts = np.bincount(probabilities.argmax(1), minlength=10)
    for name, count in zip(report["data"]["class_names"], counts):
        assert samples.get(("modelship_predictions_total", (("class", name),)), 0) == count, name
        assert samples[("modelship_reference_class_ratio", (("class", name),))] == pytest.approx(
            report["reference"]["class_distribution"][int(name)])
    infer = "/v2/models/{name}/infer"
    assert samples[("modelship_requests_total", (("method", "POST"), ("route", infer), ("status", "200")))] == requests
    assert samples[("modelship_requests_total", (("method", "POST"), ("route", infer), ("status", "400")))] == requests
    assert samples[("modelship_request_duration_seconds_count", (("route", infer),))] == 2 * requests
    assert samples[("modelship_requests_in_flight", ())] == 1  # the scrape itself
    info = {dict(labels)["model_id"]: dict(labels) for (name, labels), value in samples.items()
            if name == "modelship_model_info" and value == 1}
    labels = info[report["model_id"]]
    assert labels["format"] == "tflite" and labels["version"] == "1" and labels["gate_passed"] == "true"
    assert float(labels["accuracy"]) == pytest.approx(report["metrics"]["tflite"]["accuracy"], abs=1e-4)


def test_metrics_after_traffic(entry, digits, reference):
    tflite, _ = reference
    running = Server(entry, env={"GATE_PASSED": "true"})
    try:
        rows = send_traffic(running, digits)
        check(scrape(running), rows, tflite(rows), entry, requests=1)
        assert running.client.get("/metrics").headers["content-type"].startswith("text/plain")
    finally:
        running.stop()


def test_metrics_add_up_across_workers(entry, digits, reference):
    """Two worker processes: whichever answers the scrape reports the traffic both served."""
    tflite, _ = reference
    running = Server(entry, env={"GATE_PASSED": "true"}, args=("--workers", "2"))
    try:
        rounds = 6  # new connections each round, spread by the kernel over both workers
        sent = []
        for _ in range(rounds):
            running.client.close()
            running.client = type(running.client)(base_url=running.url, timeout=10)
            sent.append(send_traffic(running, digits))
        rows = np.concatenate(sent)
        for _ in range(3):
            check(scrape(running), rows, tflite(rows), entry, requests=rounds)
    finally:
        running.stop()
