"""Cold train + export + evaluate of the default config on digits, in a fresh process (goal <= 30 s on 2 cores).

Prints the split recorded in report.json (import, train, export, evaluate, card) and the process's wall time.
The store is a temporary directory, so nothing is reused.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 30.0


def main() -> int:
    with tempfile.TemporaryDirectory() as store:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "model", "train", "--quiet", "--store", store],
                              cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    report = json.loads(proc.stdout)
    d = report["durations"]
    work = d["import_s"] + d["train_s"] + d["export_s"] + d["evaluate_s"]
    served = report["metrics"][report["serving_format"]]
    print(f"cold train, default config ({report['config']['epochs']} epochs, int8 {report['config']['export']['int8']}): "
          f"import {d['import_s']:.1f}s, train {d['train_s']:.1f}s, export {d['export_s']:.1f}s, "
          f"evaluate {d['evaluate_s']:.1f}s (= {work:.1f}s; goal <= {GOAL_S:.0f}s), card {d['card_s']:.1f}s; "
          f"process wall {wall:.1f}s, CPU {cpu:.1f}s (user+sys; wall exceeds the work when other jobs share the cores)")
    print(f"  {report['serving_format']}: accuracy {served['accuracy']:.4f}, f1_macro {served['f1_macro']:.4f}, "
          f"loss {served['loss']:.4f}; sizes {report['sizes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
