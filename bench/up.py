"""Time from `pulumi up` after a hyper-parameter change to the new model answering (goal <= 90 s on 2 cores).

Runs through the real engine on a scratch dev stack (tests/infra/engine.py), monitoring included: up once,
change the number of epochs and the training seed (a new model id, never in the store: training, image,
server container, Prometheus), then time the second `up` until the endpoint serves the new model.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.infra.engine import engine_stack, missing_toolchain  # noqa: E402

CONFIG = {
    "target": "docker",
    "registry": {"kind": "local", "port": 15002},
    "workload": {"hostPort": 18082},
    # As on the dev stack: Prometheus' rules name the model id, so it is replaced with the server.
    "monitoring": {"prometheusPort": 19092},
}


def serves(endpoint: str, model_id: str) -> bool:
    """The endpoint answers an inference request, from the container carrying `model_id`."""
    body = {"inputs": [{"name": "features", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
    try:
        infer = httpx.post(f"{endpoint}/v2/models/model/infer", json=body, timeout=5)
        metrics = httpx.get(f"{endpoint}/metrics", timeout=5).text
    except httpx.HTTPError:
        return False
    return infer.status_code == 200 and f'model_id="{model_id}"' in metrics


def main() -> int:
    missing = missing_toolchain()
    if missing:
        print("bench/up.py needs: " + "; ".join(missing), file=sys.stderr)
        return 1
    # The timed model has a training seed of its own, so it is trained for real instead of found in the store.
    epochs, seed = 3, int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        es = engine_stack(Path(tmp), "benchup")
        try:
            es.write_config({**CONFIG, "model": {"overrides": {"epochs": epochs}}})
            es.stack.up()
            es.write_config({**CONFIG, "model": {"overrides": {"epochs": epochs + 1, "seed": seed}}})
            start = time.perf_counter()
            out = es.stack.up().outputs
            up_s = time.perf_counter() - start
            endpoint, model_id = out["endpoint"].value, out["modelId"].value
            while not serves(endpoint, model_id):
                if time.perf_counter() - start > 600:
                    raise TimeoutError(f"{endpoint} did not serve model {model_id[:12]} within 600 s")
                time.sleep(0.2)
            answering_s = time.perf_counter() - start
        finally:
            es.stack.destroy()
    print(f"hyper-parameter change (epochs {epochs} -> {epochs + 1}, seed {seed}): `pulumi up` {up_s:.1f}s, "
          f"new model answering after {answering_s:.1f}s (goal <= 90 s)")
    return 0 if answering_s <= 90 else 1


if __name__ == "__main__":
    sys.exit(main())
