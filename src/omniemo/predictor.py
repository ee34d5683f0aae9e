"""The one predictor interface: a clip in, a Prediction out (label, probabilities, reasoning).

The CPU cue pipeline and every omni-model backend implement ``Predictor``; `omniemo analyze`, `omniemo eval`
and the server call only this.
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
            out["fusion"] = {"weights": self.fusion.weights, "per_modality": self.fusion.per_modality}
        if self.timeline is not None:
            out["timeline"] = self.timeline
        if with_evidence and self.evidence is not None:
            out["evidence"] = self.evidence.to_dict()
        return out


class Predictor(Protocol):
    name: str

    def predict(self, path: str | Path, labels: str | LabelSet = "dfew") -> Prediction: ...


BACKENDS = ("pipeline", "humanomni", "qwen-omni")
# options only one side understands: each backend is given the others' filtered out
PIPELINE_ONLY = ("fps", "timeline", "keep_keyframes", "enroll")
OMNI_ONLY = ("model_path", "vision_tower", "audio_tower", "bert", "device", "dtype", "max_new_tokens", "do_sample",
             "temperature", "instruction", "score_labels")


def get_predictor(backend: str = "pipeline", **options) -> Predictor:
    """``pipeline`` (the CPU cue pipeline, default), ``humanomni`` (HumanOmni/R1-Omni checkpoints) or
    ``qwen-omni`` (Qwen2.5-Omni thinker); the omni backends need ``model_path``."""
    if backend == "pipeline":
        from omniemo.reasoning.analyze import CuePipeline

        return CuePipeline(**{k: v for k, v in options.items() if k not in OMNI_ONLY})
    if backend in ("humanomni", "qwen-omni"):
        from omniemo.models.backend import HumanOmniPredictor, QwenOmniPredictor

        omni = {k: v for k, v in options.items() if k not in PIPELINE_ONLY and v is not None}
        if not omni.get("model_path"):
            raise ValueError(f"the {backend} backend needs a checkpoint folder (--model-path DIR)")
        cls = HumanOmniPredictor if backend == "humanomni" else QwenOmniPredictor
        return cls(**omni)
    raise ValueError(f"unknown backend {backend!r}: available: {', '.join(BACKENDS)}")
