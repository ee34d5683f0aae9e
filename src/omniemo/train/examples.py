"""Training examples: (clip, instruction, target, solution) rows from the R1-Omni JSON or any dataset adapter.

Bad rows (no video field, empty or unknown label, missing file) are skipped and counted when the list is made;
files that exist but cannot be decoded are skipped and counted when their batch is built. Neither stops a run.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from omniemo.models.processing import R1OMNI_INSTRUCTION
from omniemo.train.config import DataConfig


@dataclass
class Example:
    path: str
    instruction: str
    target: str  # what SFT teaches the assistant to write
    solution: str  # the gold label (the GRPO accuracy reward's column)
    labels: str  # label-set name
    evidence: dict | None = None  # measured cues, for the grounding reward


@dataclass
class SkipLog:
    """Why rows were skipped, with counts and the first few examples of each cause."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seen: set = field(default_factory=set)

    def add(self, cause: str, what: str) -> None:
        if (cause, what) in self.seen:  # a bad file met again in a later epoch counts once
            return
        self.seen.add((cause, what))
        self.counts[cause] += 1
        self.examples.setdefault(cause, [])
        if len(self.examples[cause]) < 3:
            self.examples[cause].append(what)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        return "; ".join(f"{n} {cause} (e.g. {', '.join(self.examples[cause])})" for cause, n in self.counts.items())


def load_examples(cfg: DataConfig, skips: SkipLog | None = None) -> list[Example]:
    """The training rows of ``cfg`` through the dataset adapters (``r1omni`` for the reference JSON)."""
    from omniemo.data.datasets import get_dataset, load_items

    skips = skips if skips is not None else SkipLog()
    spec = get_dataset(cfg.source)
    labels = cfg.labels or spec.labels
    options = {"labels": labels, "on_bad": skips.add} if cfg.source == "r1omni" else {}
    examples = []
    for item in load_items(cfg.source, cfg.root, cfg.split, **options):
        if not item.label:
            skips.add("rows with an empty label", item.id)
            continue
        if not Path(item.path).is_file():
            skips.add("missing media files", item.path)
            continue
        meta = item.meta or {}
        target = meta.get("target") if cfg.target == "conversation" else None
        solution = meta.get("answer") or item.label  # the answer as the data writes it: strict accuracy compares it
        instruction = cfg.instruction or meta.get("instruction") or R1OMNI_INSTRUCTION
        examples.append(Example(item.path, instruction, target or solution, solution, labels))
    if cfg.evidence_dir:
        for ex in examples:
            record = Path(cfg.evidence_dir) / f"{Path(ex.path).stem}.json"
            ex.evidence = json.loads(record.read_text()) if record.is_file() else None
    return examples[: cfg.limit] if cfg.limit else examples
