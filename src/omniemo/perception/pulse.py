"""Remote pulse (rPPG) from the colour of facial skin, by the POS method (Wang et al. 2017, "Algorithmic
principles of remote PPG", IEEE TBME 64(7)).

It needs a steady, well-lit face for several seconds at >= 10 frames per second; motion, compression, make-up
and lighting changes easily swamp the signal. The estimate comes with a signal-quality figure (the share of
spectral power at the chosen rate and its first harmonic), and is reported as "not measurable" below a floor.
This is not a medical measurement.
"""

from __future__ import annotations

import numpy as np

PULSE_MODEL = "POS rPPG (Wang et al. 2017) on forehead and cheek skin"
MIN_SECONDS = 8.0
MIN_FPS = 10.0
FPS = 15.0  # frames per second read for the pulse
MAX_SECONDS = 30.0  # the pulse window: the first 30 s of the main face
BPM_RANGE = (42.0, 180.0)
QUALITY_FLOOR = 0.25


def pos_signal(rgb: np.ndarray, fps: float, window_seconds: float = 1.6) -> np.ndarray:
    """The POS pulse signal from per-frame mean skin colour (T, 3), overlap-added over sliding windows."""
    rgb = np.asarray(rgb, dtype=np.float64)
    n = len(rgb)
    w = max(2, int(round(window_seconds * fps)))
    h = np.zeros(n)
    projection = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
    for start in range(0, n - w + 1):
        block = rgb[start:start + w]
        mean = block.mean(axis=0)
        if np.any(mean <= 0):
            continue
        s = (block / mean) @ projection.T  # temporal normalisation, then projection on the plane orthogonal to skin tone
        alpha = s[:, 0].std() / max(s[:, 1].std(), 1e-12)
        p = s[:, 0] + alpha * s[:, 1]
        h[start:start + w] += p - p.mean()
    return h


def estimate_bpm(rgb: np.ndarray, fps: float) -> tuple[float, float]:
    """(beats per minute, quality in [0, 1]) from per-frame mean skin colour sampled at ``fps``."""
    signal = pos_signal(rgb, fps)
    signal = signal - signal.mean()
    n = len(signal)
    n_fft = int(2 ** np.ceil(np.log2(max(n, 8) * 8)))  # zero padding for a fine frequency grid
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(n), n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fps) * 60.0
    band = (freqs >= BPM_RANGE[0]) & (freqs <= BPM_RANGE[1])
    if not band.any() or spectrum[band].sum() <= 0:
        return float("nan"), 0.0
    peak = freqs[band][np.argmax(spectrum[band])]
    near = lambda f0: np.abs(freqs - f0) <= 6.0  # noqa: E731 - +-6 bpm around a rate
    wide = (freqs >= BPM_RANGE[0]) & (freqs <= 2.2 * BPM_RANGE[1])
    quality = (spectrum[near(peak) & wide].sum() + spectrum[near(2 * peak) & wide].sum()) / spectrum[wide].sum()
    return float(peak), float(np.clip(quality, 0.0, 1.0))


def skin_regions(landmarks: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Forehead and both cheeks as pixel boxes (x0, y0, x1, y1), from Face Mesh landmarks."""
    p = landmarks[:, :2]
    iod = float(np.hypot(*(p[263] - p[33])))
    boxes = []
    for centre, half_w, half_h in ((p[151], 0.35, 0.12), (p[50], 0.15, 0.12), (p[280], 0.15, 0.12)):
        boxes.append((int(centre[0] - half_w * iod), int(centre[1] - half_h * iod),
                      int(centre[0] + half_w * iod), int(centre[1] + half_h * iod)))
    return boxes


def mean_skin_colour(frame: np.ndarray, boxes) -> np.ndarray | None:
    h, w = frame.shape[:2]
    pixels = [frame[max(0, y0):min(h, y1), max(0, x0):min(w, x1)].reshape(-1, 3) for x0, y0, x1, y1 in boxes]
    pixels = [p for p in pixels if len(p)]
    if not pixels:
        return None
    return np.concatenate(pixels).mean(axis=0)
