"""/metrics after known traffic: the contract's names (docs/contracts.md), with values that add up."""
from __future__ import annotations

import numpy as np
import pytest

from app_metrics import feature_bins, prediction_counts, report, scrape, series
from app_server import Server


def send_traffic(server: Server, digits: np.ndarray) -> np.ndarray:
    """Sends 7 + 32 + 1 rows through both protocols and one bad request; returns the rows sent."""
    batches = [digits[:7], digits[7:39], digits[39:40]]
    assert server.client.post("/v1/models/model:predict", json={"instances": batches[0].tolist()}).status_code == 200
    assert server.client.post("/v2/models/model/infer", json={"inputs": [
        {"name": "features", "shape": [32, 64], "datatype": "FP32", "data": batches[1].ravel().tolist()}]}).status_code == 200
    assert server.client.post("/v1/models/model/versions/1:predict", json={"inputs": batches[2].tolist()}).status_code == 200
    assert server.client.post("/v2/models/model/infer", json={"inputs": []}).status_code == 400
    return np.concatenate(batches)


def check(samples, rows: np.ndarray, probabilities: np.ndarray, entry, requests: int) -> None:
    r = report(entry)
    assert samples[("modelship_input_rows_total", ())] == len(rows)
    bins = {(dict(labels)["feature"], dict(labels)["bin"]): value
            for labels, value in series(samples, "modelship_input_feature_bin_total").items()}
    assert bins == feature_bins(entry, rows)
    ratios = {(dict(labels)["feature"], dict(labels)["bin"]): value
              for labels, value in series(samples, "modelship_reference_feature_bin_ratio").items()}
    assert ratios == {(str(f["index"]), str(b)): pytest.approx(ratio)
                      for f in r["reference"]["features"] for b, ratio in enumerate(f["ratios"])}
    name, expected = prediction_counts(entry, probabilities)
    assert series(samples, name) == expected
    for i, class_name in enumerate(r["data"]["class_names"]):
        assert samples[("modelship_reference_class_ratio", (("class", class_name),))] == pytest.approx(
            r["reference"]["class_distribution"][i])
    infer = "/v2/models/{name}/infer"
    assert samples[("modelship_requests_total", (("method", "POST"), ("route", infer), ("status", "200")))] == requests
    assert samples[("modelship_requests_total", (("method", "POST"), ("route", infer), ("status", "400")))] == requests
    assert samples[("modelship_request_duration_seconds_count", (("route", infer),))] == 2 * requests
    assert samples[("modelship_requests_in_flight", ())] == 1  # the scrape itself
    info = {dict(labels)["model_id"]: dict(labels) for labels, value in series(samples, "modelship_model_info").items()
            if value == 1}
    labels = info[r["model_id"]]
    assert labels["format"] == "tflite" and labels["task"] == "multiclass" and labels["gate_passed"] == "true"
    assert float(labels["accuracy"]) == pytest.approx(r["metrics"]["tflite"]["accuracy"], abs=1e-4)
    assert float(labels["f1_macro"]) == pytest.approx(r["metrics"]["tflite"]["f1_macro"], abs=1e-4)


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
