"""The README walkthrough as data: its numbered steps, the command lines of each, and the excerpts it promises.

The README is the script: a `sh` block's lines run in order (a line ending in `# fails` must fail), and each
line of a `text` block must be found, in order, in what the step printed, `…` standing for anything.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FAILS = "# fails"
_HEADING = re.compile(r"^### (\d+)\. (.+)$", re.M)
_BLOCK = re.compile(r"^```(sh|text)\n(.*?)^```", re.M | re.S)


@dataclass
class Command:
    line: str
    must_fail: bool


@dataclass
class Step:
    number: int
    title: str
    commands: list[Command] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)


def walkthrough(readme: Path) -> list[Step]:
    text = readme.read_text()
    start = text.index("## Walkthrough")
    section = text[start:text.index("\n## ", start + 1)]
    headings = list(_HEADING.finditer(section))
    steps = []
    for i, heading in enumerate(headings):
        body = section[heading.end():headings[i + 1].start() if i + 1 < len(headings) else len(section)]
        step = Step(int(heading.group(1)), heading.group(2).strip())
        for kind, block in _BLOCK.findall(body):
            lines = [line.strip() for line in block.splitlines() if line.strip()]
            if kind == "sh":
                step.commands += [
                    Command(line.removesuffix(FAILS).strip(), line.endswith(FAILS)) for line in lines if not line.startswith("#")
                ]
            else:
                step.expected += lines
        steps.append(step)
    return steps


def _pattern(excerpt: str) -> re.Pattern[str]:
    words = " ".join(excerpt.split())
    return re.compile(".*?".join(re.escape(part) for part in words.split("…")))


def missing_excerpts(expected: list[str], output: str) -> list[str]:
    """The expected lines not found in `output`, each searched for after the line where the one before it was
    found (whitespace runs count as one space)."""
    lines = [" ".join(line.split()) for line in output.replace("\r", "\n").splitlines()]
    missing, at = [], 0
    for excerpt in expected:
        pattern = _pattern(excerpt)
        found = next((i for i in range(at, len(lines)) if pattern.search(lines[i])), None)
        if found is None:
            missing.append(excerpt)
        else:
            at = found
    return missing
