"""Training-time audio augmentation for the speech-emotion model: other rooms, microphones, levels and codecs.

Built on audiomentations (gain, filters and EQ, coloured noise at 5-30 dB SNR, a simulated room, MP3) plus an
Opus round trip through PyAV (the codec of phone calls and web video). Each clip's chain is drawn from its
own seed, so a run is reproducible. Used only to make training copies: analysis never augments.
"""

from __future__ import annotations

import io
import random
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000


def opus_round_trip(audio: np.ndarray, bitrate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Encode to Ogg Opus at ``bitrate`` bit/s and decode again (same length, same rate)."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=sample_rate, layout="mono")
        stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks = []
    with av.open(buffer) as source:
        for decoded in source.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(decoded)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    out_audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    out_audio = out_audio[: audio.size]
    return np.pad(out_audio, (0, audio.size - out_audio.size)).astype(np.float32)


@lru_cache(maxsize=1)
def _chain():
    import audiomentations as A

    return {
        "gain": A.Gain(min_gain_db=-18.0, max_gain_db=6.0, p=1.0),
        "channel": A.OneOf([
            A.BandPassFilter(min_center_freq=800.0, max_center_freq=1500.0, min_bandwidth_fraction=1.2,
                             max_bandwidth_fraction=1.9, p=1.0),  # telephone-like band
            A.LowPassFilter(min_cutoff_freq=2500.0, max_cutoff_freq=7000.0, p=1.0),
            A.HighPassFilter(min_cutoff_freq=60.0, max_cutoff_freq=400.0, p=1.0),
            A.SevenBandParametricEQ(min_gain_db=-8.0, max_gain_db=8.0, p=1.0),
        ], p=0.7),
        # image-source reflections only: pyroomacoustics' ray tracing draws from a generator no seed reaches
        "room": A.RoomSimulator(min_absorption_value=0.08, max_absorption_value=0.4, leave_length_unchanged=True,
                                use_ray_tracing=False, max_order=8, p=0.5),
        "noise": A.AddColorNoise(min_snr_db=5.0, max_snr_db=30.0, p=0.7),
        "tempo": A.OneOf([A.TimeStretch(min_rate=0.92, max_rate=1.08, leave_length_unchanged=False, p=1.0),
                          A.PitchShift(min_semitones=-1.0, max_semitones=1.0, p=1.0)], p=0.3),
        "mp3": A.Mp3Compression(min_bitrate=24, max_bitrate=96, p=1.0),
    }


def augment(audio: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One augmented copy of ``audio`` (16 kHz mono float32), drawn from ``seed``."""
    chain = _chain()
    random.seed(seed)  # audiomentations draws its parameters from these two generators
    np.random.seed(seed % 2**32)
    x = audio.astype(np.float32)
    for name in ("tempo", "room", "channel", "noise", "gain"):
        x = chain[name](x, sample_rate=sample_rate)
    codec = random.random()
    if codec < 0.25:
        x = chain["mp3"](x, sample_rate=sample_rate)
    elif codec < 0.5:
        x = opus_round_trip(x, random.choice((12_000, 16_000, 24_000, 32_000)), sample_rate)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def clipped(audio: np.ndarray, seed: int) -> np.ndarray:
    """``audio`` driven into its rails as an overloaded microphone or sound card does: 1-20 % of its samples (drawn
    from ``seed``) hard-clipped, then brought to a peak of 0.99."""
    share = np.random.default_rng(seed).uniform(0.01, 0.2)
    rail = float(np.quantile(np.abs(audio), 1.0 - share)) + 1e-6
    return (np.clip(audio / rail, -1.0, 1.0) * 0.99).astype(np.float32)
