"""Training examples: (clip, instruction, target, solution) rows from the R1-Omni JSON or any dataset adapter.

Bad rows (no video field, empty or unknown label, missing file) are skipped and counted when the list is made;
files that exist but cannot be decoded are skipped and counted when their batch is built. Neither stops a run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from omniemo.answers import extract_answer
from omniemo.labels import get_labelset
from omniemo.models.processing import R1OMNI_INSTRUCTION, MediaSample, load_media_sample
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


_PLACEHOLDERS = re.compile(r"<(video|audio|image)>\s*")


def load_examples(cfg: DataConfig, skips: SkipLog | None = None) -> list[Example]:
    skips = skips if skips is not None else SkipLog()
    if cfg.source == "r1omni":
        examples = _r1omni(cfg, skips)
    else:
        examples = _adapter(cfg, skips)
    if cfg.evidence_dir:
        for ex in examples:
            record = Path(cfg.evidence_dir) / f"{Path(ex.path).stem}.json"
            ex.evidence = json.loads(record.read_text()) if record.is_file() else None
    return examples[: cfg.limit] if cfg.limit else examples


def _r1omni(cfg: DataConfig, skips: SkipLog) -> list[Example]:
    """The reference JSON list: {"video": path, "conversations": [{"from": "human"}, {"from": "gpt"}]}."""
    root = Path(cfg.root)
    path = root if root.is_file() else next(iter(sorted(root.glob("*.json"))), None)
    if path is None:
        raise FileNotFoundError(f"{root}: no R1-Omni training .json file")
    labels = cfg.labels or "mafw"
    labelset = get_labelset(labels)
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, row in enumerate(rows):
        turns = {t.get("from"): t.get("value", "") for t in row.get("conversations", []) if isinstance(t, dict)}
        answer = (turns.get("gpt") or "").strip()
        if "video" not in row:
            skips.add("rows without a video", f"entry {i}")
            continue
        media = Path(row["video"])
        media = media if media.is_absolute() else path.parent / media
        solution = extract_answer(answer).strip()
        if not solution or labelset.normalize(solution) is None:
            skips.add("rows with an empty or unknown label", f"entry {i}: {answer[:40]!r}")
            continue
        if not media.is_file():
            skips.add("missing media files", str(media))
            continue
        instruction = cfg.instruction or _PLACEHOLDERS.sub("", turns.get("human") or "").strip() or R1OMNI_INSTRUCTION
        target = answer if cfg.target == "conversation" else solution
        out.append(Example(str(media), instruction, target, solution, labels))
    return out


def _adapter(cfg: DataConfig, skips: SkipLog) -> list[Example]:
    from omniemo.data.datasets import get_dataset, load_items

    spec = get_dataset(cfg.source)
    labels = cfg.labels or spec.labels
    items = load_items(cfg.source, cfg.root, cfg.split)
    out = []
    for item in items:
        if not item.label:
            skips.add("rows with an empty label", item.id)
            continue
        if not Path(item.path).is_file():
            skips.add("missing media files", item.path)
            continue
        target = item.meta.get("target") if cfg.target == "conversation" and item.meta else None
        out.append(Example(item.path, cfg.instruction or R1OMNI_INSTRUCTION, target or item.label, item.label, labels))
    return out


def decode_example(ex: Example, num_frames: int, modalities=("video", "audio")) -> MediaSample:
    """The clip as a MediaSample with the example's target; raises MediaError for unusable files."""
    return load_media_sample(ex.path, ex.instruction, num_frames, modalities, target=ex.target)[0]
