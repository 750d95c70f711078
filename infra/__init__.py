"""The Pulumi components of modelship and the program's helpers (config, gate, promotion)."""
from pathlib import Path

# The project root: where the engine runs the program, and where the stack files, app/ and .modelship/ live.
ROOT = Path(__file__).resolve().parent.parent
# The model server's readiness route (app/server.py), which every target's probes and `make up` ask.
READY_PATH = "/v2/health/ready"
