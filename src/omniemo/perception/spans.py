"""Turning per-frame values into time spans where a condition clearly holds."""

from __future__ import annotations

import numpy as np


def active_spans(times, active, period: float, min_frames: int = 2) -> list[list[float]]:
    """[start, end] seconds of runs of at least ``min_frames`` consecutive True samples.

    Each sample stands for ``period`` seconds centred on its time, so a run covers
    [first - period/2, last + period/2], clipped at 0.
    """
    times = np.asarray(times, dtype=float)
    active = np.asarray(active, dtype=bool) & np.isfinite(times)
    spans = []
    start = None
    for i, on in enumerate(np.append(active, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            if i - start >= min_frames:
                spans.append([max(0.0, times[start] - period / 2), times[i - 1] + period / 2])
            start = None
    return [[round(a, 3), round(b, 3)] for a, b in spans]


def merge_spans(spans, gap: float = 0.0) -> list[list[float]]:
    """Union of spans, joining those closer than ``gap`` seconds."""
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged


def total_seconds(spans) -> float:
    return float(sum(b - a for a, b in spans))
