import sys
from pathlib import Path

# The program imports `infra` and `model` from the project root, as the engine runs it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
