"""Body language from MediaPipe Pose landmarks (pose_landmark_full, in the mediapipe 0.10.21 wheel).

Distances are in shoulder widths and speeds in shoulder widths per second, so they do not depend on image
size or distance to the camera. Only landmarks the model marks visible (>= 0.5) are used.
"""

from __future__ import annotations

import numpy as np

BODY_MODEL = "MediaPipe Pose full (mediapipe 0.10.21)"
NOSE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST, L_HIP, R_HIP = 0, 7, 8, 11, 12, 15, 16, 23, 24
VISIBLE = 0.5

# thresholds for "clearly active" spans (heuristics, in shoulder widths or degrees)
HAND_SPEED_ACTIVE = 0.6  # shoulder widths per second: gesturing
HEAD_SPEED_ACTIVE = 0.25
HAND_NEAR_FACE = 0.6  # wrist within this distance of the nose
LEAN_ACTIVE_DEG = 8.0


class PoseAnalyzer:
    def __init__(self):
        from mediapipe.python.solutions import pose

        # complexity 1 is the model shipped in the wheel (0 and 2 would be downloaded)
        self.pose = pose.Pose(static_image_mode=False, model_complexity=1, min_detection_confidence=0.5)
        # Its graph starts its models on threads of its own and they log as they open: one blank frame waits for
        # that here, under the caller's quiet stderr, not on the terminal after a clip that gave no frame
        self.pose.process(np.zeros((64, 64, 3), np.uint8))
        self._tracking = False  # a blank frame finds no person: nothing to track or smooth into the first clip

    def close(self):
        self.pose.close()

    def new_clip(self):
        """Forget the previous clip's body: the graph tracks landmarks and smooths them (visibility too) from
        frame to frame. Restarting the graph's run clears that (the same landmarks as a new graph) at about half
        the cost of building one; a graph that read nothing yet is left as it is."""
        if self._tracking:
            self.pose.reset()
            self._tracking = False

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """(33, 3) landmarks: x, y in pixels and visibility; None when no person is found."""
        self._tracking = True
        h, w = frame.shape[:2]
        result = self.pose.process(frame)
        if result.pose_landmarks is None:
            return None
        return np.array([[p.x * w, p.y * h, p.visibility] for p in result.pose_landmarks.landmark])


def _point(lm: np.ndarray, i: int) -> np.ndarray | None:
    return lm[i, :2] if lm[i, 2] >= VISIBLE else None


def frame_features(lm: np.ndarray) -> dict[str, float]:
    """Static posture features of one frame (NaN when the needed landmarks are not visible)."""
    ls, rs = _point(lm, L_SHOULDER), _point(lm, R_SHOULDER)
    out = {k: np.nan for k in ("shoulder_width_px", "lean_deg", "shoulder_raise", "hand_to_face", "arm_openness")}
    if ls is None or rs is None:
        return out
    width = float(np.hypot(*(ls - rs)))
    if width < 1:
        return out
    out["shoulder_width_px"] = width
    mid_shoulder = (ls + rs) / 2
    lh, rh = _point(lm, L_HIP), _point(lm, R_HIP)
    nose = _point(lm, NOSE)
    if lh is not None and rh is not None:
        axis = mid_shoulder - (lh + rh) / 2
        out["lean_deg"] = float(np.degrees(np.arctan2(axis[0], -axis[1])))  # sideways lean of the trunk
    elif nose is not None:
        out["lean_deg"] = float(np.degrees(np.arctan2(nose[0] - mid_shoulder[0], mid_shoulder[1] - nose[1])))
    ears = [p for p in (_point(lm, L_EAR), _point(lm, R_EAR)) if p is not None]
    if ears:
        # neck length: ears to shoulder line, in shoulder widths; smaller = shoulders raised (or head lowered)
        out["shoulder_raise"] = float(-(mid_shoulder[1] - np.mean([e[1] for e in ears])) / width)
    wrists = [p for p in (_point(lm, L_WRIST), _point(lm, R_WRIST)) if p is not None]
    if wrists and nose is not None:
        out["hand_to_face"] = float(min(np.hypot(*(wr - nose)) for wr in wrists) / width)
    if len(wrists) == 2:
        out["arm_openness"] = float(np.hypot(*(wrists[0] - wrists[1])) / width)
    return out


def speeds(times: np.ndarray, landmarks: list[np.ndarray | None], index: int, widths: np.ndarray) -> np.ndarray:
    """Speed of one landmark in shoulder widths per second between consecutive frames (NaN when unseen).

    ``widths``: each frame's shoulder width in pixels (``frame_features``), computed once by the caller.
    """
    out = np.full(len(times), np.nan)
    for k in range(1, len(times)):
        a, b = landmarks[k - 1], landmarks[k]
        if a is None or b is None or a[index, 2] < VISIBLE or b[index, 2] < VISIBLE:
            continue
        dt = times[k] - times[k - 1]
        if np.isfinite(widths[k]) and dt > 0:
            out[k] = np.hypot(*(b[index, :2] - a[index, :2])) / widths[k] / dt
    return out


def motion_energy(prev_grey: np.ndarray | None, grey: np.ndarray) -> float:
    """Mean absolute change of the grey image between sampled frames (0-255 scale)."""
    if prev_grey is None or prev_grey.shape != grey.shape:
        return np.nan
    return float(np.mean(np.abs(grey.astype(np.int16) - prev_grey.astype(np.int16))))
