"""The one predictor interface: a clip in, a Prediction out (label, probabilities, reasoning).

The CPU cue pipeline and every omni-model backend implement ``Predictor`` (``omniemo.prediction``);
`omniemo analyze`, `omniemo eval`, batch runs and the server call only ``get_predictor`` and ``predict``.
"""

from __future__ import annotations

from omniemo.prediction import Prediction, Predictor

__all__ = ["BACKENDS", "Prediction", "Predictor", "get_predictor"]

BACKENDS = ("pipeline", "humanomni", "qwen-omni")
# options only one side understands: each backend is given the others' filtered out
PIPELINE_ONLY = ("fps", "timeline", "keep_keyframes", "enroll", "adapt", "voice_profile", "face_profile")
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
