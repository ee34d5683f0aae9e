"""Decoding: media files in, plain arrays out. Depends on nothing else in omniemo."""

from omniemo.media.decode import SAMPLE_RATE, Clip, iter_frames, load_clip
from omniemo.media.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaNotFoundError,
    MediaTooLargeError,
    NoMediaStreamsError,
)
from omniemo.media.probe import MediaInfo, probe
from omniemo.media.sampling import FixedRate, FrameSampling, HumanOmni, Uniform, parse_sampling

__all__ = [
    "SAMPLE_RATE",
    "Clip",
    "CorruptMediaError",
    "EmptyMediaError",
    "FixedRate",
    "FrameSampling",
    "HumanOmni",
    "MediaError",
    "MediaInfo",
    "MediaNotFoundError",
    "MediaTooLargeError",
    "NoMediaStreamsError",
    "Uniform",
    "iter_frames",
    "load_clip",
    "parse_sampling",
    "probe",
]
