"""The evidence record: every measured cue of a clip, with its time spans and the model that measured it.

This is the contract between perception and reasoning: a reasoning sentence may only cite cues that are
here. The JSON form is versioned (``SCHEMA``) and described by ``evidence.schema.json`` beside this file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

SCHEMA = "omniemo.evidence/1"
MODALITIES = ("face", "body", "pulse", "appearance", "voice", "words")

# status of a modality in a record
PRESENT, ABSENT, SKIPPED, NOT_MEASURABLE = "present", "absent", "skipped", "not_measurable"


@dataclass
class Cue:
    """One measured fact. ``spans`` are [start, end] seconds where it holds (the whole clip for clip-level facts)."""

    id: str
    modality: str
    name: str
    value: Any
    unit: str
    spans: list[list[float]]
    model: str
    confidence: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModalityReport:
    """What one modality yielded: its status (and why, when not present), summary figures and time series."""

    status: str
    reason: str | None = None
    model: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list] = field(default_factory=dict)


@dataclass
class Evidence:
    clip: dict[str, Any]
    settings: dict[str, Any]
    modalities: dict[str, ModalityReport] = field(default_factory=dict)
    cues: list[Cue] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    schema: str = SCHEMA

    def cue(self, cue_id: str) -> Cue | None:
        return next((c for c in self.cues if c.id == cue_id), None)

    def cues_of(self, modality: str) -> list[Cue]:
        return [c for c in self.cues if c.modality == modality]

    def present(self, modality: str) -> bool:
        report = self.modalities.get(modality)
        return report is not None and report.status == PRESENT

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"unsupported evidence schema {data.get('schema')!r} (expected {SCHEMA})")
        return cls(
            clip=data["clip"],
            settings=data["settings"],
            modalities={k: ModalityReport(**v) for k, v in data["modalities"].items()},
            cues=[Cue(**c) for c in data["cues"]],
            timings=data.get("timings", {}),
        )


def json_schema() -> dict[str, Any]:
    return json.loads(resources.files("omniemo.perception").joinpath("evidence.schema.json").read_text())


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists, floats rounded."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 5)
    return value


def value_text(value) -> str:
    """A cue's value as people read it: 3 significant digits, lists joined."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def spans_text(spans, limit: int = 4) -> str:
    """Time spans as '0.50-2.10 s, ...' (the first ``limit``)."""
    text = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in spans[:limit])
    return text + (" ..." if len(spans) > limit else "")

