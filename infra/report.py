"""`python -m infra.report --stack NAME`: the stack's gate table as Markdown, outside the engine.

The PR check posts it as a comment beside the preview, and `make report` prints it with the model card's path.
It reads the same files the engine reads (Pulumi.yaml defaults, then Pulumi.<stack>.yaml) through the same
pydantic tree, so the table it prints is the one the preview judges.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from infra import ROOT
from infra.config import NAMESPACE, StackConfigError, StackConfig, parse



def _unread_secrets(value: Any) -> tuple[Any, bool]:
    """`value` with every `{secure: ciphertext}` (at any depth, as `--path --secret` writes it) left unread."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            # The gate needs no credential, only to know one is set.
            return "<secret>", True
        pairs = {k: _unread_secrets(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(e for _, e in pairs.values())
    return value, False


def stack_config(stack: str, root: Path = ROOT) -> StackConfig:
    """Pulumi.yaml's defaults, replaced key by key by Pulumi.<stack>.yaml, validated as the program does."""
    prefix = f"{NAMESPACE}:"
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    raw: dict[str, Any] = {
        key[len(prefix):]: spec["default"]
        for key, spec in (project.get("config") or {}).items()
        if key.startswith(prefix) and "default" in spec
    }
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise SystemExit(f"error: no {stack_file.name}: is '{stack}' one of this project's stacks?")
    secret: set[str] = set()
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        if not key.startswith(prefix):
            continue
        section = key[len(prefix):]
        value, encrypted = _unread_secrets(value)
        if encrypted:
            secret.add(section)
        # As the engine does: a value set in the stack file replaces the project default whole (pydantic then
        # fills the section's missing fields), and a dotted key is its own, unknown, key.
        raw[section] = value
    return parse(raw, stack, frozenset(secret))


def gate_report(stack: str, root: Path = ROOT) -> tuple[bool, str]:
    """(passed, Markdown): the gate table for the model this stack would ship, and where its card is."""
    from model import gated_entry
    from model.gate import evaluate

    cfg = stack_config(stack, root)
    if not cfg.image.build:
        promoted = cfg.promotion
        if not promoted.model_id:
            return False, f"stack `{stack}` deploys a promoted image and none is pinned yet (`make promote`)."
        result = evaluate(promoted.model_id, {**promoted.metrics, "task": promoted.task}, cfg.gate.thresholds)
        return result.passed, f"{result.to_markdown()}\n\nimage: `{promoted.image}` (promoted, not rebuilt)"
    entry, result = gated_entry(root / cfg.model.train_config, cfg.model.training_overrides(), cfg.gate.thresholds,
                                    root / cfg.model.store_dir)
    return result.passed, f"{result.to_markdown()}\n\nmodel card: `{entry.path / 'model_card.md'}`"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.report", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="dev, staging or prod")
    args = parser.parse_args(argv)
    try:
        passed, text = gate_report(args.stack)
    except StackConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
