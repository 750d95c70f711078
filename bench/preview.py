"""No-op `pulumi preview` of dev with a stored model, against the same program with the gate removed.

Both run through the real engine on a scratch stack (tests/infra/engine.py) that is up with the model
already in the store; the gate-less variant is the same `__main__.py` with the gate call replaced by the
stored entry it would return. Prints both medians and the difference (goal: <= 1 s).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.infra.engine import engine_stack, missing_toolchain  # noqa: E402

RUNS = 5
GATE_CALL = "    model = gate.gated_model(cfg.model, cfg.gate, stack)\n"
# The gate's answer for the stored entry, read back from the stack's own output instead of computed.
NO_GATE = (
    "    from model.gate import GateResult\n"
    "    from infra.stack_outputs import read_outputs\n"
    "    _last = GateResult.model_validate(read_outputs(stack)['gate'])\n"
    "    model = gate.GatedModel(_last.model_id, gate.ROOT / cfg.model.store_dir / _last.model_id, _last)\n"
)
CONFIG = {
    "target": "docker",
    "registry": {"kind": "local", "port": 15001},
    "workload": {"hostPort": 18081},
    "monitoring": {"enabled": False},
}


def median_preview(es) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        steps, _ = es.changes()
        times.append(time.perf_counter() - start)
        assert not steps, f"preview was not a no-op: {steps}"
    return statistics.median(times)


def main() -> int:
    missing = missing_toolchain()
    if missing:
        print("bench/preview.py needs: " + "; ".join(missing), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        es = engine_stack(Path(tmp), "benchpreview")
        es.write_config(CONFIG)
        try:
            es.stack.up()
            gated = median_preview(es)
            main_py = es.workdir / "__main__.py"
            source = main_py.read_text()
            assert GATE_CALL in source, "__main__.py no longer calls gate.gated_model as the bench expects"
            main_py.unlink()  # a link to the repository's file: replaced by the variant, never edited
            main_py.write_text(source.replace(GATE_CALL, NO_GATE))
            ungated = median_preview(es)
        finally:
            es.stack.destroy()
    print(f"no-op preview, dev, stored model: with gate {gated:.2f}s, gate removed {ungated:.2f}s, "
          f"difference {gated - ungated:+.2f}s (median of {RUNS}; goal <= 1 s)")
    return 0 if gated - ungated <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
