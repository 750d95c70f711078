import sys
from pathlib import Path

# `monitoring` and `infra` import from the project root, as the Pulumi program does.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
