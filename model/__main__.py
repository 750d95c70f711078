"""`python -m model train|gate|card`: JSON on stdout, progress and problems on stderr.

Exit codes: 0 done (gate: passed), 1 gate failed, 2 the config, thresholds, data or store entry is wrong.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import ValidationError

from model.pipeline import trained_entry
from model.card import CARD
from model.config import TrainConfigError, load, read_mapping
from model.data import DataError
from model.gate import Thresholds
from model.search import gated_entry
from model.store import CorruptEntry, Store, StoreEntry

PACKAGE = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE / "configs" / "digits.yaml"
DEFAULT_THRESHOLDS = PACKAGE / "configs" / "gate.yaml"


class UsageError(Exception):
    pass


def _overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set epochs=5 --set hidden_layers=[64,32]`: values are YAML, keys may be dotted."""
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set epochs=5")
        found[key] = yaml.safe_load(value)
    return found


def _thresholds(path: Path) -> Thresholds:
    try:
        return Thresholds.model_validate(read_mapping(path))
    except ValidationError as e:
        bad = "; ".join(f"{'.'.join(map(str, x['loc']))}: {'unknown metric' if x['type'] == 'extra_forbidden' else x['msg']}"
                        for x in e.errors())
        raise UsageError(f"{path}: invalid thresholds: {bad}") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, help="store directory (default: $MODELSHIP_STORE or .modelship/store)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("train", "train (or reuse) the configured model; prints report.json"),
                       ("gate", "train or reuse, then judge it; prints the gate result, exit 1 when it fails")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML or JSON training config")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
        p.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
        _common(p)
        if name == "gate":
            p.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="YAML or JSON thresholds")
    p = sub.add_parser("card", help="print where a model's card is", description="print where a model's card is")
    p.add_argument("model_id", help="a model id or a unique prefix of one")
    _common(p)
    return parser


def run(args: argparse.Namespace) -> int:
    progress = not getattr(args, "quiet", True) and sys.stderr.isatty()
    if args.command == "train":
        entry = trained_entry(load(args.config, _overrides(args.set)).train, Store(args.store), progress)
        print(f"model {entry.model_id} in {entry.path}", file=sys.stderr)
        print(entry.report.model_dump_json(indent=2))
        return 0
    if args.command == "gate":
        thresholds = _thresholds(args.thresholds)
        entry, result = gated_entry(args.config, _overrides(args.set), thresholds, args.store, progress)
        print(f"{result.summary}\nentry: {entry.path}", file=sys.stderr)
        print(result.model_dump_json(indent=2))
        return 0 if result.passed else 1
    store = Store(args.store)
    try:
        entry = StoreEntry(store.resolve(args.model_id))
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    print(entry.path / CARD)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (UsageError, TrainConfigError, DataError, CorruptEntry, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
