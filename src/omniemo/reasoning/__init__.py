"""Reasoning: measured cues -> fused emotion -> grounded <think>/<answer>. Depends on perception."""

from omniemo.reasoning.explain import build_reasoning, verify
from omniemo.reasoning.fusion import Fusion, fuse

__all__ = ["Fusion", "build_reasoning", "fuse", "verify"]
