"""Appearance and setting: clothing colours below the main face, and background brightness and colour.

Person pixels come from MediaPipe selfie segmentation (in the mediapipe 0.10.21 wheel). Colours are named by
the nearest entry of a small palette in CIELAB. Nothing else is claimed: no scene model runs offline, so
indoor/outdoor, objects and garments are not reported.
"""

from __future__ import annotations

import numpy as np

APPEARANCE_MODEL = "MediaPipe selfie segmentation + k-means colours (named in CIELAB)"

PALETTE = {
    "black": (20, 20, 20), "dark grey": (70, 70, 70), "grey": (128, 128, 128), "light grey": (190, 190, 190),
    "white": (240, 240, 240), "red": (190, 30, 40), "dark red": (110, 20, 30), "orange": (230, 130, 40),
    "brown": (115, 75, 45), "beige": (215, 195, 160), "yellow": (230, 210, 60), "olive": (120, 120, 50),
    "green": (50, 140, 60), "dark green": (25, 70, 40), "teal": (30, 130, 130), "light blue": (140, 180, 225),
    "blue": (40, 80, 180), "navy": (25, 35, 80), "purple": (110, 50, 140), "pink": (230, 150, 180),
}


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    arr = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(arr, cv2.COLOR_RGB2LAB).reshape(-1, 3)


_PALETTE_NAMES = list(PALETTE)
_PALETTE_LAB = None


def colour_name(rgb) -> str:
    global _PALETTE_LAB
    if _PALETTE_LAB is None:
        _PALETTE_LAB = _lab(np.array(list(PALETTE.values())))
    d = np.linalg.norm(_PALETTE_LAB - _lab(np.asarray(rgb))[0], axis=1)
    return _PALETTE_NAMES[int(np.argmin(d))]


def dominant_colours(pixels: np.ndarray, k: int = 3, min_share: float = 0.15) -> list[dict]:
    """Named dominant colours of a pixel set with their share, largest first (k-means in RGB, seeded)."""
    import cv2

    if len(pixels) < 20:
        return []
    rng = np.random.default_rng(0)
    sample = pixels[rng.choice(len(pixels), min(len(pixels), 4000), replace=False)].astype(np.float32)
    k = min(k, len(sample))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(sample, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels.ravel(), minlength=k) / len(labels)
    named: dict[str, float] = {}
    rgb_of: dict[str, list] = {}
    for centre, share in zip(centres, shares):
        name = colour_name(centre)
        named[name] = named.get(name, 0.0) + float(share)
        rgb_of.setdefault(name, [int(v) for v in centre])
    return [{"name": n, "share": round(s, 3), "rgb": rgb_of[n]}
            for n, s in sorted(named.items(), key=lambda kv: -kv[1]) if s >= min_share]


class Segmenter:
    def __init__(self):
        from mediapipe.python.solutions import selfie_segmentation

        self.model = selfie_segmentation.SelfieSegmentation(model_selection=0)

    def close(self):
        self.model.close()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Boolean person mask."""
        return self.model.process(frame).segmentation_mask > 0.5


def clothing_box(face_box: np.ndarray, frame_shape) -> tuple[int, int, int, int] | None:
    """The upper-body region under a face: from half a face below the chin, one and a half faces down."""
    h, w = frame_shape[:2]
    x0, y0, x1, y1 = face_box
    fw, fh = x1 - x0, y1 - y0
    box = (int(max(0, x0 - 0.5 * fw)), int(min(h, y1 + 0.5 * fh)), int(min(w, x1 + 0.5 * fw)), int(min(h, y1 + 2.0 * fh)))
    if box[3] - box[1] < 4 or box[2] - box[0] < 4:
        return None
    return box


def describe_frame(frame: np.ndarray, mask: np.ndarray, face_box: np.ndarray | None, step: int = 2) -> dict:
    """Clothing colours (person pixels below the face) and background (non-person pixels) of one frame, read on
    every ``step``-th pixel of each row and column (the colours' k-means reads 4,000 pixels whatever the size:
    gathering all of them was most of this function's time)."""
    out: dict = {}
    if face_box is not None:
        box = clothing_box(face_box, frame.shape)
        if box is not None:
            x0, y0, x1, y1 = box
            region, region_mask = frame[y0:y1:step, x0:x1:step], mask[y0:y1:step, x0:x1:step]
            person = region[region_mask]
            if len(person) >= 0.2 * region_mask.size:
                out["clothing"] = dominant_colours(person)
                out["clothing_box"] = list(box)
    frame, mask = frame[::step, ::step], mask[::step, ::step]
    background = frame[~mask]
    if len(background) >= 0.05 * mask.size:
        lab = _lab(background.mean(axis=0))[0]
        out["background_brightness"] = round(float(lab[0]) / 100.0, 3)  # CIELAB lightness, 0-1
        out["background"] = dominant_colours(background, k=3, min_share=0.2)
    out["person_share"] = round(float(mask.mean()), 3)
    return out
