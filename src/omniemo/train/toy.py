"""A toy audio-visual emotion task for smoke tests and the GRPO learning demo: the label is in the media.

Each clip is 1 s of frames tinted by its label's colour plus a tone at its label's pitch, with noise, so a model
can only answer right by looking or listening. ``write_toy_dataset`` writes the clips and a manifest (JSONL:
path, label, split) that the ``manifest`` dataset adapter reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# three MER2023 labels with distinct colours and pitches
TOY_LABELS = {"happy": ((230, 200, 40), 660.0), "sad": ((40, 70, 200), 220.0), "angry": ((210, 40, 40), 440.0)}


def toy_clip(path: Path, label: str, rng: np.random.Generator, seconds: float = 1.0, fps: float = 8.0,
             size: int = 48) -> Path:
    from omniemo.media.synth import write_frames

    colour, pitch = TOY_LABELS[label]
    n = int(seconds * fps)
    base = np.asarray(colour, np.float32)
    frames = [np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8) for _ in range(n)]
    t = np.arange(int(16000 * seconds)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * pitch * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    return write_frames(path, frames, fps, audio=audio)


def write_toy_dataset(out_dir: str | Path, n_train: int = 24, n_test: int = 12, seed: int = 0) -> Path:
    """Clips under ``out_dir/clips`` and ``out_dir/manifest.jsonl`` with splits train/test; returns the manifest."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    labels = list(TOY_LABELS)
    rows = []
    for split, count in (("train", n_train), ("test", n_test)):
        for i in range(count):
            label = labels[i % len(labels)]
            path = toy_clip(out / "clips" / f"{split}-{i:03d}.mp4", label, rng)
            rows.append({"path": str(path.relative_to(out)), "label": label, "split": split, "id": path.stem})
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest
