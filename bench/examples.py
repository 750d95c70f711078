"""The examples beside the default model, in one run: cold train time, shipped artifact size, and serving
throughput and latency of modelship's server on each (wrk from a separate process on 127.0.0.1, one
all-zero instance of the model's real input per request, TF Serving row format).

Each model trains in a fresh process into a temporary store (nothing reused), then is served by the same
server code in turn; ratios are against the default model (the seed's Dense 128 on 8x8 digits), so the table
shows what a user's own input shape and task cost.

Run: `python bench/examples.py [--seconds 3] [--connections 8]` (or `make bench`).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve import Server, free_port, lua_body, wrk  # noqa: E402

CONFIGS = {
    "default (digits MLP)": ROOT / "model" / "configs" / "digits.yaml",
    "cnn (8x8x1 images)": ROOT / "examples" / "cnn" / "train.yaml",
    "breast_cancer (binary)": ROOT / "examples" / "breast_cancer" / "train.yaml",
    "diabetes (regression)": ROOT / "examples" / "diabetes" / "train.yaml",
    "pretrained (.keras)": ROOT / "examples" / "pretrained" / "train.yaml",
}


@dataclass
class Row:
    label: str
    task: str
    input: str
    train_s: float
    wall_s: float
    size: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def train(config: Path, store: Path) -> tuple[dict, float]:
    """The report of a cold train in a fresh process, and that process's wall time."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "model", "train", "--quiet", "--config", str(config), "--store", str(store)],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"training {config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), time.perf_counter() - started


def serve(entry: Path, report: dict, seconds: float, connections: int, work: Path) -> tuple[float, float, float, int]:
    spec = report["signature"]["input"]
    zeros = np.zeros([1, *spec["shape"]], dtype=np.int32 if spec["dtype"] == "int32" else np.float32)
    port = free_port()
    server = Server("modelship", [sys.executable, "-m", "app", "--model", str(entry), "--host", "127.0.0.1", "--port", str(port)],
                    "/v1/models/model:predict", "/v2/health/ready", port, cwd=ROOT)
    server.start(work)
    try:
        script = lua_body(work / "body.lua", zeros)
        wrk(server.url + server.path, script, connections, 1)  # warm-up
        cell = wrk(server.url + server.path, script, connections, seconds)
    finally:
        server.stop()
    return cell.rps, cell.p50_ms, cell.p99_ms, cell.errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, config in CONFIGS.items():
            report, wall = train(config, work / "store")
            entry = work / "store" / report["model_id"]
            spec = report["signature"]["input"]
            d = report["durations"]
            rps, p50, p99, errors = serve(entry, report, args.seconds, args.connections, work)
            rows.append(Row(label, report["task"], f"{spec['dtype']}{spec['shape']}", d["train_s"] + d["export_s"] + d["evaluate_s"],
                            wall, report["sizes"][report["serving_format"]], rps, p50, p99, errors))
            print(f"done: {label}", flush=True)
    base = rows[0].rps
    print(f"\nexamples beside the default model: wrk -c{args.connections}, batch 1, {args.seconds:g} s per model, 127.0.0.1")
    print("| model | task | input | train+export+evaluate s | process wall s | served artifact bytes | req/s | ratio to default | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.label} | {r.task} | {r.input} | {r.train_s:.1f} | {r.wall_s:.1f} | {r.size:,} | {r.rps:.0f} | "
              f"{r.rps / base:.2f}x | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |")
    return 0 if all(r.errors == 0 and math.isfinite(r.rps) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
