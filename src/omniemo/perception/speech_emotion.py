"""Emotion from the voice: our own model, chosen by how it does on corpora it never heard.

Input: the detected speech only, cut into utterances of at most ``MAX_SEGMENT_SECONDS`` (the length the model
was trained on), each trimmed and brought to one loudness level (``prepare``), so that a quiet microphone or a
long recording is not out of distribution. Features per utterance (``features``): the multilingual Whisper
base encoder's middle layers (2, 3 and 4 of 6, each mean-pooled over time; middle layers carry more of how
something is said than the last) plus the 88 openSMILE eGeMAPSv02 functionals. A linear softmax over the 8
emotion concepts of RAVDESS maps them to probabilities; it was trained on four corpora in four languages,
each contributing only the emotions it has (``omniemo.train.speech_emotion``).

Three variants ship in one weights file:

- ``single``: features standardised with the training statistics; works on one clip alone.
- ``enrolled``: features standardised with the speaker's own statistics, from several clips of that speaker
  (``enroll_clips``); trained the same way, speaker by speaker.
- ``corpus``: features centred on the mean of a set of recordings made the same way (one corpus, session,
  microphone or language; any speakers and emotions: ``adapt_clips``); trained the same way, corpus by corpus.
  The mean carries the room, microphone and language, which a single clip cannot tell from the emotion.

A clip's voice emotion is the utterances' distributions averaged, weighted by duration and confidence; with
less than ``FULL_CONFIDENCE_SECONDS`` of speech it is pulled towards uniform, and below ``MIN_SPEECH_SECONDS``
there is none (a tone or a cough is not an emotion).
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
from omniemo.perception.models import import_faster_whisper, whisper_encoder

LABELS = RAVDESS.labels  # neutral, calm, happy, sad, angry, fear, disgust, surprise: the concept space
SAMPLE_RATE = 16_000
WEIGHTS = "speech_emotion.npz"
ENCODER = "base"
LAYERS = (2, 3, 4)
VARIANTS = ("single", "enrolled", "corpus")
MODEL_NAME = "omniemo speech-emotion (Whisper base layers 2-4 + eGeMAPS, linear, 4 corpora)"
TARGET_DBFS = -23.0  # every utterance is brought to this RMS level before features
MAX_SEGMENT_SECONDS = 6.0  # longer speech is split: the model was trained on 1-6 s utterances
MIN_SEGMENT_SECONDS = 0.4
MIN_SPEECH_SECONDS = 0.4  # less detected speech than this: no voice emotion (the shortest utterance read)
# a mean of fewer clips is mostly their emotions (from 5 or 10 clips, held-out CREMA-D lost 2-3 points)
MIN_ADAPT_CLIPS = 10
MAX_ADAPT_CLIPS = 100  # 50 clips already came within 2 points of a whole corpus; more is reading every clip twice
FULL_CONFIDENCE_SECONDS = 1.5  # below this much speech the distribution is pulled towards uniform


@lru_cache(maxsize=1)
def _egemaps():
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)


@lru_cache(maxsize=1)
def _mel():
    import_faster_whisper()
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=80)


def prepare(audio: np.ndarray, spans: list[list[float]] | None = None) -> np.ndarray:
    """Speech from its first to its last detected span (0.1 s margin), without DC offset, at TARGET_DBFS RMS
    (never clipping)."""
    if spans:
        a = max(0, int((spans[0][0] - 0.1) * SAMPLE_RATE))
        b = min(audio.size, int((spans[-1][1] + 0.1) * SAMPLE_RATE))
        if b - a > SAMPLE_RATE // 4:
            audio = audio[a:b]
    x = audio.astype(np.float64)
    x -= x.mean() if x.size else 0.0
    rms = np.sqrt(np.mean(x**2)) + 1e-9
    gain = min(10 ** (TARGET_DBFS / 20) / rms, 0.99 / (np.abs(x).max() + 1e-9), 1e3)
    return (x * gain).astype(np.float32)


def log_mel(speech: np.ndarray) -> np.ndarray:
    """Whisper's log-mel features (80, frames) of one prepared utterance, as the encoder reads them."""
    mel = _mel()(speech)
    return mel[:, : min(3000, max(2, mel.shape[1] // 2 * 2))]  # the encoder halves the frames; 30 s at most


def encoder_states(speech: np.ndarray, upto: int | None = None) -> list[np.ndarray]:
    """The Whisper encoder's states (frames, 512) for one prepared utterance: after the convolutions, then after
    each block up to ``upto`` (all by default)."""
    return whisper_encoder(ENCODER).hidden_states(log_mel(speech), upto=upto)


def features(speech: np.ndarray) -> np.ndarray:
    """The model's input for one prepared utterance (16 kHz mono): 3 x 512 + 88 values."""
    if speech.size < SAMPLE_RATE // 10:
        raise ValueError("need at least 0.1 s of speech")
    states = encoder_states(speech, upto=max(LAYERS))
    pooled = [states[layer].mean(axis=0) for layer in LAYERS]
    egemaps = _egemaps().process_signal(speech, SAMPLE_RATE).to_numpy()[0]
    return np.concatenate(pooled + [egemaps]).astype(np.float64)


def utterances(spans: list[list[float]], gap: float = 0.5) -> list[tuple[float, float]]:
    """Speech spans joined across short pauses, long ones split into equal pieces of at most MAX_SEGMENT_SECONDS."""
    joined: list[list[float]] = []
    for a, b in spans:
        if joined and a - joined[-1][1] < gap:
            joined[-1][1] = b
        else:
            joined.append([a, b])
    out = []
    for a, b in joined:
        pieces = int(np.ceil((b - a) / MAX_SEGMENT_SECONDS))
        edges = np.linspace(a, b, pieces + 1)
        out += [(float(s), float(e)) for s, e in zip(edges, edges[1:]) if e - s >= MIN_SEGMENT_SECONDS]
    return out


def clip_features(audio: np.ndarray, spans: list[list[float]] | None = None) -> np.ndarray:
    """Features of a whole (short) clip, as in training: trimmed to its speech and levelled."""
    return features(prepare(audio, spans))


@dataclass
class VoiceProfile:
    """Feature statistics of a set of clips: one speaker's (``scope="speaker"``, enrolment) or one recording
    set's (``scope="corpus"``, adaptation)."""

    mean: np.ndarray
    std: np.ndarray
    clips: int
    scope: str = "speaker"

    @property
    def variant(self) -> str:
        """The model variant trained for features normalised this way."""
        return "enrolled" if self.scope == "speaker" else "corpus"

    def describe(self) -> str:
        return (f"enrolled with the speaker ({self.clips} clips)" if self.scope == "speaker"
                else f"adapted to a recording set ({self.clips} clips)")


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
                weights={v: (data[f"{v}_W"], data[f"{v}_b"]) for v in VARIANTS},
                temperature={v: float(data[f"{v}_temperature"]) for v in VARIANTS},
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
    def enroll(features: list[np.ndarray]) -> VoiceProfile:
        """A speaker's profile: their own mean and spread (the ``enrolled`` variant)."""
        stack = np.vstack(features)
        if len(stack) < 2:
            raise ValueError("enrolment needs at least 2 clips of the speaker")
        return VoiceProfile(stack.mean(axis=0), stack.std(axis=0) + 1e-6, len(stack), "speaker")

    def adapt(self, features: list[np.ndarray]) -> VoiceProfile:
        """A recording set's profile: its mean, with the training spread (the ``corpus`` variant; a mean needs
        fewer clips than a spread over 1,624 features)."""
        stack = np.vstack(features)
        if len(stack) < MIN_ADAPT_CLIPS:
            raise ValueError(f"adapting to a recording set needs at least {MIN_ADAPT_CLIPS} clips; got {len(stack)}")
        return VoiceProfile(stack.mean(axis=0), self.global_std, len(stack), "corpus")

    def predict_proba(self, features: np.ndarray, profile: VoiceProfile | None = None) -> np.ndarray:
        """Calibrated probabilities over ``labels`` for one feature vector or a batch (rows); ``profile``: a
        speaker's or a recording set's, or None for a clip alone."""
        x = np.atleast_2d(features)
        if profile is None:
            variant, z = "single", (x - self.global_mean) / self.global_std
        else:
            variant, z = profile.variant, (x - profile.mean) / profile.std
        w, b = self.weights[variant]
        logits = (z @ w.T + b) / self.temperature[variant]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p[0] if np.ndim(features) == 1 else p


@dataclass
class VoiceEmotion:
    """A clip's voice emotion: the aggregate distribution and each utterance's."""

    probabilities: np.ndarray
    segments: list[dict]  # {"start", "end", "probabilities"}
    speech_seconds: float
    damped: bool  # pulled towards uniform: little speech was heard


def segment_emotions(audio: np.ndarray, spans: list[list[float]], model: SpeechEmotionModel | None = None,
                     profile: VoiceProfile | None = None) -> VoiceEmotion | None:
    """The voice emotion of a recording of any length, from its detected speech; None without enough speech."""
    model = model or default_model()
    speech_seconds = float(sum(b - a for a, b in spans))
    pieces = utterances(spans)
    if speech_seconds < MIN_SPEECH_SECONDS or not pieces:
        return None
    rows, weights = [], []
    for start, end in pieces:
        chunk = audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]
        inside = [[max(a, start) - start, min(b, end) - start] for a, b in spans if b > start and a < end]
        p = model.predict_proba(clip_features(chunk, inside), profile=profile)
        rows.append({"start": round(start, 2), "end": round(end, 2),
                     "probabilities": {lab: round(float(v), 4) for lab, v in zip(model.labels, p)}})
        weights.append((end - start) * float(p.max()))  # longer and more certain utterances count more
    stacked = np.array([[r["probabilities"][lab] for lab in model.labels] for r in rows])
    mixed = np.average(stacked, axis=0, weights=weights)
    trust = min(1.0, speech_seconds / FULL_CONFIDENCE_SECONDS)
    mixed = trust * mixed + (1 - trust) / len(mixed)
    return VoiceEmotion(mixed / mixed.sum(), rows, speech_seconds, trust < 1.0)


def _speech_features(paths, skip_unreadable: bool = False, enough: int | None = None) -> list[np.ndarray]:
    """Features of each clip with enough speech (any media files with audio), up to ``enough`` of them; the
    others are skipped, and with ``skip_unreadable`` so are files that cannot be decoded (otherwise their
    MediaError is raised)."""
    from omniemo.media import MediaError, load_clip
    from omniemo.perception.models import quiet_native_stderr
    from omniemo.perception.voice import speech_spans

    collected: list[np.ndarray] = []
    with quiet_native_stderr():  # the native models' log lines stay out of the terminal, as in extract_cues
        for path in paths:
            if enough is not None and len(collected) >= enough:
                break
            try:
                audio = load_clip(path, sampling=None).audio
            except MediaError:
                if not skip_unreadable:
                    raise
                continue
            spans = speech_spans(audio) if audio.size >= SAMPLE_RATE // 2 else []
            if sum(b - a for a, b in spans) >= MIN_SPEECH_SECONDS:
                collected.append(clip_features(audio, spans))
    return collected


def enroll_clips(paths, model: SpeechEmotionModel | None = None) -> VoiceProfile:
    """A speaker profile from several clips of the same speaker (any media files with audio)."""
    paths = list(paths)
    collected = _speech_features(paths)
    if len(collected) < 2:
        raise ValueError(f"enrolment needs at least 2 clips with {MIN_SPEECH_SECONDS} s of speech; got {len(collected)} of {len(paths)}")
    return (model or default_model()).enroll(collected)


def spread_order(paths, first: int = MAX_ADAPT_CLIPS) -> list:
    """``first`` of ``paths`` spread evenly over the given order (so a sorted corpus contributes every part of
    itself), then the rest: the order in which a set is read to adapt to it."""
    paths = list(paths)
    spread = set(np.linspace(0, len(paths) - 1, min(len(paths), first)).round().astype(int).tolist())
    return [paths[i] for i in sorted(spread)] + [p for i, p in enumerate(paths) if i not in spread]


def adapt_clips(paths, model: SpeechEmotionModel | None = None) -> VoiceProfile:
    """A recording set's profile from clips recorded the same way (any speakers and emotions): the first
    ``MAX_ADAPT_CLIPS`` with speech, read in an order spread evenly over the given one (so a sorted corpus
    contributes every part of itself), the rest only where clips without speech left too few."""
    # one bad file in a corpus is not the corpus: unreadable files are skipped
    collected = _speech_features(spread_order(paths), skip_unreadable=True, enough=MAX_ADAPT_CLIPS)
    if len(collected) < MIN_ADAPT_CLIPS:
        raise ValueError(f"adapting to a recording set needs at least {MIN_ADAPT_CLIPS} clips with "
                         f"{MIN_SPEECH_SECONDS} s of speech; got {len(collected)} of {len(paths)}")
    return (model or default_model()).adapt(collected)


@lru_cache(maxsize=1)
def default_model() -> SpeechEmotionModel:
    return SpeechEmotionModel.load()
