"""Shared fixtures: the real data in ../shared/data (skip when absent, fail under CI) and generated clips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omniemo.media.synth import write_clip

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("OMNIEMO_SHARED_DATA", REPO.parent / "shared" / "data"))

# Analysis is offline: any attempt to reach a model hub must fail loudly in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def shared_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must run with ../shared/data beside the repository")
        pytest.skip(f"{path} not present (real data lives beside the repository, never inside it)")
    return path


@pytest.fixture(scope="session")
def crema_samples() -> Path:
    return shared_dir("crema-d-samples")


@pytest.fixture(scope="session")
def ravdess_speech() -> Path:
    return shared_dir("ravdess-speech-16k")


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Small generated clips, one per container family, plus the modality edge cases."""
    root = tmp_path_factory.mktemp("clips")
    made = {ext: write_clip(root / f"av{ext}", 2.0, size=(160, 120)) for ext in
            (".mp4", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wav", ".mp3", ".flac", ".ogg", ".m4a")}
    made["video_only"] = write_clip(root / "video_only.mp4", 2.0, size=(160, 120), audio=False)
    made["silent"] = write_clip(root / "silent.mp4", 2.0, size=(160, 120), silent=True)
    made["short"] = write_clip(root / "short.mp4", 0.2, size=(160, 120))  # 5 frames
    return made


@pytest.fixture(scope="session")
def shared_cremad() -> Path:
    return shared_dir("crema-d-audio-16k")
