"""Gate answer on a store hit, in a fresh process each time (goal <= 0.5 s, TensorFlow never imported).

Trains the default config into a temporary store once (not timed), then runs `gated_entry` in new
processes and prints the median of: import of `model`, the call itself, the two together, and the CPU time they took
(on a shared machine wall time is CPU time plus waiting for a core).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
GOAL_S = 0.5
PROBE = """
import json, sys, time
c0 = time.process_time()
t0 = time.perf_counter()
from model import gated_entry
t1 = time.perf_counter()
_, result = gated_entry("model/configs/digits.yaml", None, {"accuracy": 0.9, "f1_macro": 0.9}, sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "call": t2 - t1, "cpu": time.process_time() - c0, "passed": result.passed,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as store:
        subprocess.run([sys.executable, "-m", "model", "train", "--quiet", "--store", store],
                       cwd=ROOT, check=True, capture_output=True)
        runs = []
        for _ in range(RUNS):
            proc = subprocess.run([sys.executable, "-c", PROBE, store], cwd=ROOT, capture_output=True, text=True, check=True)
            runs.append(json.loads(proc.stdout))
    if any(r["tensorflow"] for r in runs) or not all(r["passed"] for r in runs):
        print(f"store hit imported TensorFlow or failed the gate: {runs}", file=sys.stderr)
        return 1
    med = {k: statistics.median(r[k] for r in runs) for k in ("import", "call", "cpu")}
    print(f"store hit gate answer, median of {RUNS} fresh processes: import model {med['import']:.3f}s + "
          f"gated_entry {med['call']:.3f}s = {med['import'] + med['call']:.3f}s (goal <= {GOAL_S}s); "
          f"CPU time {med['cpu']:.3f}s (wall exceeds it when other work shares the cores); TensorFlow not imported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
