"""Which frames to keep: each strategy turns a clip's frame count, rate and duration into target times.

Strategies only plan; `decode.py` fetches the planned frames, decoding nothing else it can skip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omniemo.media.probe import MediaInfo


@dataclass(frozen=True)
class SamplingPlan:
    """Target times in seconds (ascending) plus how many black frames to append afterwards."""

    times: np.ndarray
    pad_black: int = 0


class FrameSampling:
    name = "base"

    def plan(self, info: MediaInfo) -> SamplingPlan:  # pragma: no cover - interface
        raise NotImplementedError


def _index_times(info: MediaInfo, indices: np.ndarray) -> np.ndarray:
    fps = info.fps or 25.0
    return info.video_start + indices.astype(np.float64) / fps


def _frame_count(info: MediaInfo) -> int:
    if info.num_frames:
        return info.num_frames
    return max(1, round(info.duration * (info.fps or 25.0)))


@dataclass(frozen=True)
class Uniform(FrameSampling):
    """N frames at the centres of N equal segments of the clip (repeats frames if the clip has fewer)."""

    n: int = 16
    name = "uniform"

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"frame count must be at least 1, got {self.n}")

    def plan(self, info: MediaInfo) -> SamplingPlan:
        total = _frame_count(info)
        idx = np.floor((np.arange(self.n) + 0.5) * total / self.n).astype(np.int64)
        return SamplingPlan(_index_times(info, np.clip(idx, 0, total - 1)))


@dataclass(frozen=True)
class HumanOmni(FrameSampling):
    """The reference sampler of HumanOmni/R1-Omni: index_i = round(seg * (i + 0.5)), seg = (N - 1) / n.

    Clips with fewer than n frames keep all of them and are padded with black frames, as the reference does.
    The +1e-6 reproduces the reference's round-half-up on exact halves (numpy rounds halves to even).
    """

    n: int = 8
    name = "humanomni"

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"frame count must be at least 1, got {self.n}")

    def plan(self, info: MediaInfo) -> SamplingPlan:
        total = _frame_count(info)
        if total < self.n:
            return SamplingPlan(_index_times(info, np.arange(total)), pad_black=self.n - total)
        seg = (total - 1) / self.n
        idx = np.round(seg * (np.arange(self.n) + 0.5) + 1e-6).astype(np.int64)
        return SamplingPlan(_index_times(info, idx))


@dataclass(frozen=True)
class FixedRate(FrameSampling):
    """A frame every 1/fps seconds from the first frame to the end of the video stream."""

    fps: float = 2.0
    name = "fps"

    def __post_init__(self):
        if self.fps <= 0:
            raise ValueError(f"frame rate must be positive, got {self.fps}")

    def plan(self, info: MediaInfo) -> SamplingPlan:
        span = info.video_duration or info.duration  # audio may run on past the last frame
        count = max(1, int(np.ceil(span * self.fps - 1e-9)))
        return SamplingPlan(info.video_start + np.arange(count) / self.fps)


def parse_sampling(spec: str | FrameSampling) -> FrameSampling:
    """'humanomni', 'humanomni:8', 'uniform:16', 'fps:2' -> a strategy."""
    if isinstance(spec, FrameSampling):
        return spec
    name, _, arg = str(spec).strip().lower().partition(":")
    try:
        if name == "humanomni":
            return HumanOmni(int(arg) if arg else 8)
        if name == "uniform":
            return Uniform(int(arg) if arg else 16)
        if name == "fps":
            return FixedRate(float(arg) if arg else 2.0)
    except ValueError as exc:
        raise ValueError(f"bad frame sampling {spec!r}: {exc}") from exc
    raise ValueError(f"unknown frame sampling {spec!r}: use humanomni[:N], uniform:N or fps:F")
