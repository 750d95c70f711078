"""Each project in examples/ deployed for real on a dev stack (Docker target), as its README tells a user to:
its own model code, data and task, gated at preview, built into an image, served, and blocked at preview by a
threshold it cannot meet, with the running service left as it was.

One stack, shared by the examples in order (each `up` replaces the model of the one before); it has its own
name, host ports and registry, so neither a `make up` dev stack nor the engine tests are touched.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import yaml
from pulumi import automation as auto

from tests.infra.engine import ROOT, EngineStack, engine_stack, missing_toolchain

STACK = "examples"
HOST_PORT, REGISTRY_PORT, PROMETHEUS_PORT = 23080, 23000, 23090
EXAMPLES = ROOT / "examples"
# A threshold each example's model cannot meet on its test split: the gate must stop it at preview.
UNREACHABLE = {
    "cnn": {"accuracy": 0.9999},
    "breast_cancer": {"accuracy": 0.9999},
    "diabetes": {"r2": 0.99},
    "pretrained": {"accuracy": 0.9999},
}


def example_config(name: str) -> dict[str, Any]:
    """The example's own stack settings (examples/<name>/stack.yaml), on this test stack's ports."""
    settings = yaml.safe_load((EXAMPLES / name / "stack.yaml").read_text())["config"]
    sections = {key.removeprefix("modelship:"): value for key, value in settings.items()}
    return {
        **sections,
        "target": "docker",
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"prometheusPort": PROMETHEUS_PORT},
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[EngineStack]:
    missing = missing_toolchain()
    if missing:
        pytest.fail("the examples deploy on the real engine, which needs: " + "; ".join(missing), pytrace=False)
    es = engine_stack(tmp_path_factory.mktemp("examples"), STACK)
    yield es
    es.stack.destroy(on_output=print)
    es.stack.workspace.remove_stack(STACK)


def expected(name: str):
    """The example's model id and test split, computed as the program computes them (no TensorFlow)."""
    from model import identify
    from model.config import load

    config = load(EXAMPLES / name / "train.yaml", yaml.safe_load((EXAMPLES / name / "stack.yaml").read_text())
                  ["config"].get("modelship:model", {}).get("overrides", {})).train
    return identify(config)


def served_artifact_output(entry: Path, rows: np.ndarray) -> np.ndarray:
    """What the shipped TFLite file itself answers for `rows`: the server must answer the same."""
    import json

    from ai_edge_litert.interpreter import Interpreter

    report = json.loads((entry / "report.json").read_text())
    interpreter = Interpreter(model_path=str(entry / report["artifacts"][report["serving_format"]]))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], list(rows.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], rows.astype(inp["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def infer(endpoint: str, signature: dict[str, Any], rows: np.ndarray) -> httpx.Response:
    datatype = {"float32": "FP32", "int32": "INT32"}[signature["input"]["dtype"]]
    body = {"inputs": [{"name": signature["input"]["name"], "shape": list(rows.shape), "datatype": datatype,
                        "data": rows.ravel().tolist()}]}
    return httpx.post(f"{endpoint}/v2/models/model/infer", json=body, timeout=10)


@pytest.mark.parametrize("name", list(UNREACHABLE))
def test_example_deploys_serves_its_model_and_a_failing_threshold_blocks_at_preview(stack, name):
    import json

    stack.write_config(example_config(name))
    model_id, data = expected(name)
    out = stack.stack.up(on_output=print).outputs
    assert out["modelId"].value == model_id
    assert out["gate"].value["passed"] is True

    entry = ROOT / ".modelship" / "store" / model_id
    report = json.loads((entry / "report.json").read_text())
    assert report["task"] == data.task
    rows = data.x_test[:3]
    answer = infer(out["endpoint"].value, report["signature"], rows)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["shape"] == [3, *report["signature"]["output"]["shape"]]
    np.testing.assert_allclose(np.asarray(output["data"]).reshape(output["shape"]), served_artifact_output(entry, rows),
                               rtol=1e-6, atol=1e-6)
    metrics = httpx.get(f"{out['endpoint'].value}/metrics", timeout=10).text
    info = re.search(r"^modelship_model_info\{(.*)\} 1\.0$", metrics, re.M)
    assert info and f'model_id="{model_id}"' in info.group(1) and f'task="{data.task}"' in info.group(1), metrics[:2000]
    # The curl `make up` prints is one a user can paste: it names the model's real input.
    assert f'"name":"{report["signature"]["input"]["name"]}"' in out["curl"].value

    before = stack.stack.export_stack().deployment["resources"]
    failing = example_config(name)
    failing["gate"] = {"thresholds": UNREACHABLE[name]}
    stack.write_config(failing)
    try:
        with pytest.raises(auto.CommandError, match="failed the gate") as refused:
            stack.stack.preview()
    finally:
        stack.write_config(example_config(name))
    metric = next(iter(UNREACHABLE[name]))
    assert f"| {metric} |" in str(refused.value) and "**FAIL**" in str(refused.value)
    assert stack.stack.export_stack().deployment["resources"] == before
    assert infer(out["endpoint"].value, report["signature"], rows).status_code == 200
