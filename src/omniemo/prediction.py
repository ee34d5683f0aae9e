"""What every predictor returns and the call it answers: the interface below the CPU pipeline and the omni backends.

Kept apart from ``omniemo.predictor`` (which picks a backend and so imports them all), so that the backends
import these types without an import circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omniemo.labels import LabelSet


@dataclass
class Prediction:
    path: str
    label: str
    probabilities: dict[str, float]
    output: str  # the reference format: <think>...</think>\n<answer>label</answer>
    reasoning: list[dict] = field(default_factory=list)  # sentences with the cue ids they rest on
    contributions: dict[str, float] = field(default_factory=dict)
    missing_modalities: list[str] = field(default_factory=list)
    backend: str = ""
    evidence: Any = None  # an Evidence record for the cue pipeline
    fusion: Any = None  # the cue pipeline's Fusion (per-modality distributions, weights)
    timeline: list[dict] | None = None

    def to_dict(self, with_evidence: bool = True) -> dict:
        out = {
            "path": self.path, "label": self.label, "probabilities": self.probabilities, "output": self.output,
            "reasoning": self.reasoning, "contributions": self.contributions,
            "missing_modalities": self.missing_modalities, "backend": self.backend,
        }
        if self.fusion is not None:  # how the answer was weighed: each modality's distribution and weight
            out["fusion"] = {"weights": self.fusion.weights, "floors": self.fusion.floors,
                             "per_modality": self.fusion.per_modality}
        if self.timeline is not None:
            out["timeline"] = self.timeline
        if with_evidence and self.evidence is not None:
            out["evidence"] = self.evidence.to_dict()
        return out


class Predictor(Protocol):
    name: str

    def predict(self, path: str | Path, labels: str | LabelSet = "dfew") -> Prediction: ...
