"""`python -m monitoring SPEC.json OUT_DIR`: writes prometheus.yml, rules.yml, alertmanager.yml and
dashboard.json for a `MonitoringSpec` given as JSON (for a Prometheus or Grafana run by hand; a stack
deploys the same files through infra/monitoring.py and exports the dashboard as `dashboard`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from monitoring import MonitoringSpec, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="MonitoringSpec as JSON")
    parser.add_argument("out", type=Path, help="directory to write the files into")
    args = parser.parse_args(argv)
    try:
        spec = MonitoringSpec.model_validate_json(args.spec.read_text())
    except (OSError, ValidationError) as err:
        print(f"python -m monitoring: cannot use {args.spec}: {err}", file=sys.stderr)
        return 2
    for path in render(spec).write(args.out).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
