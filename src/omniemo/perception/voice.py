"""Voice cues: speech and pauses (Silero VAD, shipped inside faster-whisper), pitch (YIN), loudness and voice
quality (openSMILE eGeMAPSv02 low-level descriptors, 10 ms hop) and speaking rate (loudness peaks = syllable
nuclei).

openSMILE is free for research and education only (audEERING's licence); see the README.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from omniemo.perception.pitch import yin
from omniemo.perception.spans import active_spans, merge_spans, total_seconds

VOICE_MODEL = "Silero VAD (faster-whisper) + YIN pitch + openSMILE eGeMAPSv02"
MIN_VOICED_SECONDS = 0.1  # less voiced speech than this: no pitch figures
SAMPLE_RATE = 16_000
HOP = 0.01  # seconds between openSMILE frames
MIN_PAUSE = 0.25  # seconds of silence between speech that counts as a pause
SERIES_STEP = 5  # keep every 5th 10 ms frame (50 ms) in the JSON series
BLOCK_SECONDS = 60.0  # long recordings are analysed a minute at a time: memory stays flat
# Silero finds less speech the quieter the recording (CREMA-D dev clips whose loudest frames sit at -60 dBFS:
# half got no voice emotion): the detector reads a quiet recording raised to this level, never more than by
# MAX_DETECTION_GAIN_DB. Its loudness is measured on the raw audio, so the voice cues still say how loud it was.
DETECTION_LEVEL_DBFS = -25.0
MAX_DETECTION_GAIN_DB = 40.0
# A DC offset from this size on hid speech from Silero (0.05: 4-9 % of dev clips lost); smaller ones are left:
# on heavily clipped speech, removing an offset of 0.003 lost the speech of 5 more clips in 150.
MIN_DC_OFFSET = 0.01


def audio_blocks(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, seconds: float = BLOCK_SECONDS):
    """(offset in s, piece) for consecutive pieces of at most ``seconds``; the last may be short."""
    size = int(seconds * sample_rate)
    for start in range(0, len(audio), size):
        yield start / sample_rate, audio[start:start + size]


def loudest_frames_dbfs(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, offset: float = 0.0) -> float:
    """How loud a recording's loud parts are: the 99th percentile of its 30 ms frames' RMS (less ``offset``), in
    dBFS. Read a block at a time (no copy of a long recording)."""
    size = int(0.03 * sample_rate)
    levels = [np.sqrt(np.mean(frames**2, axis=1)) for _, piece in audio_blocks(audio, sample_rate)
              for frames in [(piece.astype(np.float64) - offset)[: piece.size // size * size].reshape(-1, size)]]
    frames = np.concatenate(levels) if levels else np.zeros(0)
    return float(20 * np.log10(np.percentile(frames, 99) + 1e-12)) if frames.size else float("-inf")


def detection_gain(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[float, float]:
    """(DC offset, gain) that bring a recording to what the speech detector reads best (``levelled``): no
    offset of MIN_DC_OFFSET or more (a cheap sound card's DC hid speech from it), and its loudest frames
    (``loudest_frames_dbfs``) at DETECTION_LEVEL_DBFS when it is quieter, never past full scale."""
    if audio.size == 0:
        return 0.0, 1.0
    offset = float(np.mean(audio, dtype=np.float64))
    offset = offset if abs(offset) >= MIN_DC_OFFSET else 0.0
    peak = max(float(np.abs(piece.astype(np.float64) - offset).max()) for _, piece in audio_blocks(audio, sample_rate))
    loudest = loudest_frames_dbfs(audio, sample_rate, offset)
    if peak <= 0 or not np.isfinite(loudest):
        return offset, 1.0
    raise_db = float(np.clip(DETECTION_LEVEL_DBFS - loudest, 0.0, MAX_DETECTION_GAIN_DB))
    return offset, float(max(1.0, min(10 ** (raise_db / 20), 0.99 / peak)))


def levelled(piece: np.ndarray, level: tuple[float, float]) -> np.ndarray:
    """A piece of a recording less the offset and times the gain of ``detection_gain``, as float32."""
    offset, gain = level
    return ((piece.astype(np.float64) - offset) * gain).astype(np.float32)


def speech_spans(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[list[float]]:
    """[start, end] seconds of speech, by the Silero VAD model that faster-whisper ships (reading the recording
    without DC offset and, when quiet, raised: ``detection_gain``)."""
    from omniemo.perception.models import import_faster_whisper

    import_faster_whisper()
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=0.5, min_speech_duration_ms=120, min_silence_duration_ms=int(MIN_PAUSE * 1000),
                         speech_pad_ms=30)
    level = detection_gain(audio, sample_rate)
    spans = []
    for start, piece in audio_blocks(audio, sample_rate):
        stamps = get_speech_timestamps(levelled(piece, level), options, sampling_rate=sample_rate)
        spans += [[round(start + s["start"] / sample_rate, 3), round(start + s["end"] / sample_rate, 3)] for s in stamps]
    # speech running across a block boundary is cut there: join it again
    return merge_spans(spans, gap=MIN_PAUSE / 4) if len(audio) > BLOCK_SECONDS * sample_rate else spans


@lru_cache(maxsize=1)
def _lld_extractor():
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.LowLevelDescriptors)


def low_level(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Per-10 ms frame: time, loudness, and jitter, shimmer (dB), HNR (dB) where eGeMAPS finds voicing (else NaN).

    Pitch comes from YIN (``pitch.yin``): eGeMAPS's F0 drops too many frames of noisy speech."""
    parts = []
    for offset, piece in audio_blocks(audio, sample_rate):
        if piece.size < 0.1 * sample_rate:
            continue
        frame = _lld_extractor().process_signal(piece, sample_rate)
        starts = frame.index.get_level_values("start").total_seconds().to_numpy()
        voiced = frame["F0semitoneFrom27.5Hz_sma3nz"].to_numpy() > 0
        nan_unvoiced = lambda col: np.where(voiced, frame[col].to_numpy(), np.nan)  # noqa: E731
        parts.append({
            "times": offset + starts + 0.01,  # centre of the 20 ms window
            "loudness": frame["Loudness_sma3"].to_numpy(),
            "jitter": nan_unvoiced("jitterLocal_sma3nz"),
            "shimmer_db": nan_unvoiced("shimmerLocaldB_sma3nz"),
            "hnr_db": nan_unvoiced("HNRdBACF_sma3nz"),
        })
    keys = ("times", "loudness", "jitter", "shimmer_db", "hnr_db")
    return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}


def syllable_peaks(times: np.ndarray, loudness: np.ndarray, spans) -> np.ndarray:
    """Times of loudness peaks inside speech: a common proxy for syllable nuclei."""
    from scipy.signal import find_peaks

    if len(loudness) < 5:
        return np.zeros(0)
    smooth = np.convolve(loudness, np.ones(5) / 5, mode="same")
    inside = np.zeros(len(times), bool)
    for a, b in spans:
        inside |= (times >= a) & (times <= b)
    peaks, _ = find_peaks(np.where(inside, smooth, 0), prominence=0.15 * max(np.percentile(smooth, 95), 1e-6),
                          distance=int(0.1 / HOP))
    return times[peaks]


def _nanstat(fn, x):
    x = x[np.isfinite(x)]
    return float(fn(x)) if x.size else float("nan")


def analyse_voice(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, spans: list[list[float]] | None = None) -> dict:
    """All voice measurements of a clip as plain data (spans in seconds); ``spans``: its speech, when detected
    already (``speech_spans``)."""
    duration = audio.size / sample_rate
    spans = speech_spans(audio, sample_rate) if spans is None else spans
    result: dict = {"duration": duration, "speech_spans": spans, "speech_seconds": total_seconds(spans)}
    pauses = [[a[1], b[0]] for a, b in zip(spans, spans[1:]) if b[0] - a[1] >= MIN_PAUSE]
    result["pauses"] = pauses
    if not spans:
        return result
    lld = low_level(audio, sample_rate)
    t = lld["times"]
    in_speech = np.zeros(len(t), bool)
    for a, b in spans:
        in_speech |= (t >= a) & (t <= b)
    pitch_times, pitch_hz = yin(audio, sample_rate)
    f0 = np.full(len(t), np.nan)
    if pitch_times.size:
        nearest = np.clip(np.searchsorted(pitch_times, t), 0, pitch_times.size - 1)
        close = np.abs(pitch_times[nearest] - t) <= HOP
        f0[close] = pitch_hz[nearest[close]]
    f0 = np.where(in_speech, f0, np.nan)
    if np.isfinite(f0).sum() * HOP < MIN_VOICED_SECONDS:
        f0[:] = np.nan
    loud = lld["loudness"]
    voiced = np.isfinite(f0)
    semitones = 12 * np.log2(f0[voiced] / 27.5) if voiced.any() else np.zeros(0)
    peaks = syllable_peaks(t, loud, spans)
    speech_loud = loud[in_speech]
    result.update(
        voiced_seconds=float(voiced.sum() * HOP),
        pitch_median_hz=_nanstat(np.median, f0),
        pitch_p10_hz=_nanstat(lambda x: np.percentile(x, 10), f0),
        pitch_p90_hz=_nanstat(lambda x: np.percentile(x, 90), f0),
        pitch_range_semitones=float(np.percentile(semitones, 90) - np.percentile(semitones, 10)) if semitones.size > 5 else float("nan"),
        loudness_mean=float(speech_loud.mean()) if speech_loud.size else float("nan"),
        loudness_variability=float(speech_loud.std() / max(speech_loud.mean(), 1e-6)) if speech_loud.size else float("nan"),
        syllables=int(len(peaks)),
        syllable_rate=float(len(peaks) / max(result["speech_seconds"], 1e-6)),
        jitter=_nanstat(np.mean, lld["jitter"][in_speech]),
        shimmer_db=_nanstat(np.mean, lld["shimmer_db"][in_speech]),
        hnr_db=_nanstat(np.mean, lld["hnr_db"][in_speech]),
    )
    # loud stretches: speech clearly louder than this clip's median speech loudness
    if speech_loud.size:
        loud_mask = in_speech & (loud > 1.5 * np.median(speech_loud))
        result["loud_spans"] = merge_spans(active_spans(t, loud_mask, HOP, min_frames=15), gap=0.1)
    high_mask = np.isfinite(f0) & (f0 > result["pitch_p90_hz"] * 0.98) if voiced.any() else np.zeros(len(t), bool)
    result["high_pitch_spans"] = merge_spans(active_spans(t, high_mask, HOP, min_frames=8), gap=0.15)
    step = slice(None, None, SERIES_STEP)
    result["series"] = {"times": t[step].round(3).tolist(), "pitch_hz": f0[step].round(1).tolist(),
                        "loudness": loud[step].round(3).tolist()}
    return result
