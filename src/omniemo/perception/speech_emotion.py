"""Emotion from the voice: our own small model, since no offline speech-emotion model exists.

Features per clip (``clip_features``): the Whisper tiny.en encoder's hidden states (the speech recogniser's
weights, already shipped), mean- and std-pooled over time (768), plus the 88 openSMILE eGeMAPSv02
functionals. A multinomial logistic regression maps them to the 8 RAVDESS emotions. Two variants ship in
one weights file:

- ``single``: features standardised with the training set's statistics; works on one clip alone.
- ``enrolled``: features standardised with the speaker's own statistics, from several clips of that
  speaker (``enroll``); the classifier was trained the same way, speaker by speaker.

Trained by ``omniemo train speech-emotion`` (see ``omniemo.train.speech_emotion``); the weights file and its
model card are in ``omniemo/perception/weights/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.labels import RAVDESS
from omniemo.perception.models import whisper_model

LABELS = RAVDESS.labels  # neutral, calm, happy, sad, angry, fear, disgust, surprise
SAMPLE_RATE = 16_000
WEIGHTS = "speech_emotion.npz"
MODEL_NAME = "omniemo speech-emotion (Whisper tiny.en encoder + eGeMAPS, logistic regression)"


@lru_cache(maxsize=1)
def _egemaps():
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)


def whisper_embedding(audio: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time of the Whisper tiny.en encoder output (2 x 384).

    The encoder takes at most 30 s (3000 mel frames) at a time: longer speech is encoded in 30 s pieces
    and pooled over all of them.
    """
    import ctranslate2

    model = whisper_model(2, "tiny.en")
    states = []
    window = 30 * SAMPLE_RATE  # the log-mel too is made 30 s at a time: memory stays flat for long speech
    for start in range(0, max(audio.size, 1), window):
        piece = model.feature_extractor(audio[start:start + window].astype(np.float32))[:, :3000]
        frames = max(2, piece.shape[1] // 2 * 2)  # the encoder halves the frame count: keep it even
        piece = np.ascontiguousarray(np.pad(piece, ((0, 0), (0, max(0, frames - piece.shape[1]))))[None, :, :frames], np.float32)
        states.append(np.array(model.model.encode(ctranslate2.StorageView.from_array(piece), to_cpu=True))[0])
    hidden = np.concatenate(states)
    return np.concatenate([hidden.mean(axis=0), hidden.std(axis=0)])


def egemaps_functionals(audio: np.ndarray) -> np.ndarray:
    """eGeMAPS functionals; past a minute, the duration-weighted mean of each minute's (memory stays flat)."""
    block = 60 * SAMPLE_RATE
    if audio.size <= block:
        return _egemaps().process_signal(audio.astype(np.float32), SAMPLE_RATE).to_numpy()[0]
    pieces = [audio[s:s + block] for s in range(0, audio.size, block) if audio[s:s + block].size >= SAMPLE_RATE]
    values = [_egemaps().process_signal(p.astype(np.float32), SAMPLE_RATE).to_numpy()[0] for p in pieces]
    return np.average(values, axis=0, weights=[p.size for p in pieces])


def clip_features(audio: np.ndarray) -> np.ndarray:
    """The model's input for one clip of 16 kHz mono speech (856 values)."""
    if audio.size < SAMPLE_RATE // 10:
        raise ValueError("need at least 0.1 s of audio")
    return np.concatenate([whisper_embedding(audio), egemaps_functionals(audio)]).astype(np.float64)


@dataclass
class SpeakerProfile:
    """Feature statistics of one speaker, from enrolment clips."""

    mean: np.ndarray
    std: np.ndarray
    clips: int


@dataclass
class SpeechEmotionModel:
    labels: tuple[str, ...]
    global_mean: np.ndarray
    global_std: np.ndarray
    weights: dict[str, tuple[np.ndarray, np.ndarray]]  # variant -> (W (classes x features), b)
    temperature: dict[str, float]
    card: dict

    @classmethod
    def load(cls, path: str | Path | None = None) -> SpeechEmotionModel:
        source = Path(path) if path else resources.files("omniemo.perception").joinpath("weights", WEIGHTS)
        with source.open("rb") as handle:
            data = np.load(handle, allow_pickle=False)
            return cls(
                labels=tuple(str(x) for x in data["labels"]),
                global_mean=data["global_mean"], global_std=data["global_std"],
                weights={v: (data[f"{v}_W"], data[f"{v}_b"]) for v in ("single", "enrolled")},
                temperature={v: float(data[f"{v}_temperature"]) for v in ("single", "enrolled")},
                card=json.loads(str(data["card"])),
            )

    def save(self, path: str | Path) -> None:
        arrays = {"labels": np.array(self.labels), "global_mean": self.global_mean, "global_std": self.global_std,
                  "card": np.array(json.dumps(self.card))}
        for variant, (w, b) in self.weights.items():
            arrays[f"{variant}_W"], arrays[f"{variant}_b"] = w, b
            arrays[f"{variant}_temperature"] = np.array(self.temperature[variant])
        with files.atomic_path(path) as temp, open(temp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @staticmethod
    def enroll(features: list[np.ndarray]) -> SpeakerProfile:
        stack = np.vstack(features)
        if len(stack) < 2:
            raise ValueError("enrolment needs at least 2 clips of the speaker")
        return SpeakerProfile(stack.mean(axis=0), stack.std(axis=0) + 1e-6, len(stack))

    def predict_proba(self, features: np.ndarray, speaker: SpeakerProfile | None = None) -> np.ndarray:
        """Calibrated probabilities over ``labels`` for one feature vector or a batch (rows)."""
        x = np.atleast_2d(features)
        if speaker is None:
            variant, z = "single", (x - self.global_mean) / self.global_std
        else:
            variant, z = "enrolled", (x - speaker.mean) / speaker.std
            if self.card.get("enrolled_with_global"):
                z = np.hstack([z, (x - self.global_mean) / self.global_std])
        w, b = self.weights[variant]
        logits = (z @ w.T + b) / self.temperature[variant]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p[0] if np.ndim(features) == 1 else p


def enroll_clips(paths, model: SpeechEmotionModel | None = None) -> SpeakerProfile:
    """A speaker profile from several clips of the same speaker (any media files with audio)."""
    from omniemo.media import load_clip

    model = model or default_model()
    features = []
    for path in paths:
        audio = load_clip(path, sampling=None).audio
        if audio.size >= SAMPLE_RATE // 2:
            features.append(clip_features(audio))
    if len(features) < 2:
        raise ValueError(f"enrolment needs at least 2 clips with 0.5 s of audio; got {len(features)} of {len(list(paths))}")
    return model.enroll(features)


@lru_cache(maxsize=1)
def default_model() -> SpeechEmotionModel:
    return SpeechEmotionModel.load()
