"""Perception: timestamped cues from face, body, pulse, appearance, voice and words, on the CPU, offline.

Depends on `omniemo.media` only. Entry point: ``extract_cues(path) -> Evidence``.
"""

from omniemo.perception.evidence import SCHEMA, Cue, Evidence, ModalityReport, json_schema
from omniemo.perception.pipeline import extract_cues, parse_modalities

__all__ = ["SCHEMA", "Cue", "Evidence", "ModalityReport", "extract_cues", "json_schema", "parse_modalities"]
