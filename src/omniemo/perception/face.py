"""Faces: detection, landmarks, tracks, the main speaker, expression probabilities and geometric descriptors.

Models (all inside installed wheels): MediaPipe face detection (full range) and Face Mesh (468 landmarks),
from mediapipe 0.10.21; our expression model (``perception.expression``) on eye-aligned crops. Per-frame
expression probabilities are smoothed over about a second before they are summarised, so one blurred or
badly cropped frame does not flip the reading.

Descriptors are distances between landmarks divided by the inter-ocular distance (outer eye corners), after
removing head roll, so they do not depend on image size or distance to the camera. They describe the face
geometry, not an emotion: a person's resting face may have low brows or a downturned mouth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from omniemo.perception.expression import CLASSES as FER_CLASSES
from omniemo.perception.expression import (EXPERT_INPUT_SIZE, NOISE_THRESHOLD, SHARPNESS_FULL, ExpressionModel,
                                          FaceProfile, denoised, face_crop, outside_say, sharpness)
from omniemo.perception.spans import active_spans

FACE_MODELS = "MediaPipe face detection + Face Mesh (mediapipe 0.10.21)"

# Face Mesh landmark indices (subject's right = image left).
R_EYE_OUT, R_EYE_IN, R_LID_UP, R_LID_LOW = 33, 133, 159, 145
L_EYE_OUT, L_EYE_IN, L_LID_UP, L_LID_LOW = 263, 362, 386, 374
R_BROW_MID, R_BROW_IN, L_BROW_MID, L_BROW_IN = 105, 107, 334, 336
LIP_UP_IN, LIP_LOW_IN, MOUTH_R, MOUTH_L = 13, 14, 61, 291
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10

# Each descriptor: (unit, threshold rule for "clearly active", plain-words name of the active state).
# Thresholds are heuristics set by inspection of frontal faces (fractions of the inter-ocular distance);
# "rel" rules compare with the clip's own calmest third of frames, so a resting face is not "active".
DESCRIPTORS = {
    "brow_raise": ("IOD", ("rel", +0.04), "brows raised"),
    "brow_furrow": ("IOD", ("rel", +0.03), "brows drawn together"),
    "eye_openness": ("IOD", ("rel", +0.04), "eyes widened"),
    "eye_closure": ("IOD", ("rel", +0.05), "eyes narrowed or closed"),
    "mouth_opening": ("IOD", ("abs", 0.15), "mouth open"),
    "lip_corner_pull": ("IOD", ("rel", +0.04), "lip corners pulled up"),
    "lip_corner_depression": ("IOD", ("rel", +0.04), "lip corners pulled down"),
    "jaw_drop": ("IOD", ("rel", +0.08), "jaw dropped"),
    "head_yaw": ("degrees", ("abs_mag", 20.0), "head turned"),
    "head_pitch": ("degrees", ("abs_mag", 15.0), "head tilted up or down"),
    "head_roll": ("degrees", ("abs_mag", 12.0), "head tilted sideways"),
}


@dataclass
class FaceObservation:
    box: np.ndarray  # x0, y0, x1, y1 in pixels
    score: float
    landmarks: np.ndarray | None = None  # (468, 3) pixels (x, y, relative depth z)
    expression: np.ndarray | None = None  # probabilities over FER_CLASSES
    noise: float | None = None  # grain on the expression crop (grey levels); above NOISE_THRESHOLD it was denoised
    sharpness: float | None = None  # detail on the expression crop (``expression.sharpness``): blurred or small faces read low
    crop: np.ndarray | None = None  # the aligned 48 x 48 grey crop our nets read (what re-standardising on a set needs)


@dataclass
class FaceTrack:
    id: int
    frames: list[int] = field(default_factory=list)
    observations: list[FaceObservation] = field(default_factory=list)

    @property
    def last_box(self) -> np.ndarray:
        return self.observations[-1].box


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# `facex` is most of what reading one face's expression costs (5.7 of 9.7 ms in bench_face.py); on video a face
# that stays in place (its box overlapping the previous frame's by REUSE_IOU) gets it every other frame, the
# previous frame's reading in between. The expression is smoothed over a second (5 frames at the default rate),
# so a reading 0.2 s old changes the summary by little; our nets and the other outside models still read every frame.
REUSED_EXPERTS = ("facex",)
REUSE_IOU = 0.5


class FaceAnalyzer:
    """Per-frame face observations: boxes (full-range detector), landmarks and expression per face."""

    def __init__(self, max_faces: int = 3, min_confidence: float = 0.5):
        from mediapipe.python.solutions import face_detection, face_mesh

        self.max_faces = max_faces
        self.detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
        self.min_confidence = min_confidence
        self._crop_detector = None  # the short-range detector, built for the first still image the detector misses
        # Landmarks are fitted on each detected face's crop, so several faces each get a mesh.
        self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                       min_detection_confidence=0.3)
        self.shipped_expression = ExpressionModel()
        self.expression = self.shipped_expression  # the model reading this clip: re-standardised for a set's profile
        self.expression_model = self.expression.name
        self._restandardised: tuple[str, ExpressionModel] | None = None  # (the set's key, its model): built once a set
        # (box, readings of REUSED_EXPERTS made fresh) of the faces of the previous frame and of this one
        self._previous: list[tuple[np.ndarray, dict]] = []
        self._current: list[tuple[np.ndarray, dict]] = []

    def close(self):
        self.detector.close()
        if self._crop_detector is not None:
            self._crop_detector.close()
        self.mesh.close()

    def new_clip(self, profile: FaceProfile | None = None):
        """Forget the previous clip's faces (the readings reused between frames); the models hold no other state.
        With a set's ``profile`` that carries its faces, the clip is read by our nets re-standardised on them."""
        self._previous, self._current = [], []
        self.expression = self.shipped_expression
        if profile is not None and profile.crops is not None:
            if self._restandardised is None or self._restandardised[0] != profile.key:
                self._restandardised = (profile.key, self.shipped_expression.restandardised(profile.crops, profile.home))
            self.expression = self._restandardised[1]

    def __call__(self, frame: np.ndarray) -> list[FaceObservation]:
        import cv2

        h, w = frame.shape[:2]
        result = self.detector.process(frame)
        self._previous, self._current = self._current, []
        observations = []
        grey = None
        for det in (result.detections or [])[: self.max_faces]:
            b = det.location_data.relative_bounding_box
            box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h])
            box = np.clip(box, 0, [w, h, w, h])
            if box[2] - box[0] < 8 or box[3] - box[1] < 8:
                continue
            obs = FaceObservation(box=box, score=float(det.score[0]))
            obs.landmarks = self._landmarks(frame, box)
            if grey is None:
                grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            obs.expression = self.read_expression(grey, obs)
            observations.append(obs)
        return observations

    def read_expression(self, grey: np.ndarray, obs: FaceObservation) -> np.ndarray:
        """Expression probabilities from the eye-aligned crops (the padded box where no landmarks were found),
        denoised first where the face is grainy (``expression.denoised``)."""
        crop, wide, obs.noise = denoised(face_crop(grey, obs.landmarks, obs.box),
                                         face_crop(grey, obs.landmarks, obs.box, EXPERT_INPUT_SIZE))
        obs.sharpness, obs.crop = sharpness(crop), crop
        reuse = self._fresh_reading_near(obs.box)
        # a face too blurred or small for the outside models to have any say: they are not run
        readings = self.expression.expert_readings(wide, reuse) if outside_say(obs.sharpness) > 0 else {}
        self._current.append((obs.box, {} if reuse else {k: readings[k] for k in REUSED_EXPERTS if k in readings}))
        return self.expression(crop, readings)

    def _fresh_reading_near(self, box: np.ndarray) -> dict:
        """The REUSED_EXPERTS readings made fresh for the same face in the previous frame ({} if none: read anew)."""
        overlaps = [(iou(box, old_box), readings) for old_box, readings in self._previous if readings]
        best = max(overlaps, key=lambda pair: pair[0], default=(0.0, {}))
        return best[1] if best[0] >= REUSE_IOU else {}

    def whole_image(self, frame: np.ndarray) -> FaceObservation | None:
        """A still image whose face the detector missed (a tight crop): the whole image read as the face, if Face
        Mesh finds a face in it or the short-range detector does once the image has a border around it; else None
        (a photograph of bricks or grass is not a face: it was once read as a sad one)."""
        import cv2

        h, w = frame.shape[:2]
        obs = FaceObservation(box=np.array([0.0, 0.0, w, h]), score=0.0)
        obs.landmarks = self._landmarks(frame, obs.box)
        if obs.landmarks is None and not self._face_in_crop(frame):
            return None
        obs.expression = self.read_expression(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), obs)
        return obs

    def _face_in_crop(self, frame: np.ndarray, side: int = 192) -> bool:
        """The short-range detector on the image with a grey border of half its size: a face that fills the image
        has no context for a detector, one in the middle of a frame has. Small images are enlarged first."""
        import cv2
        from mediapipe.python.solutions import face_detection

        if self._crop_detector is None:  # videos never need it: no graph for them
            self._crop_detector = face_detection.FaceDetection(model_selection=0,
                                                               min_detection_confidence=self.min_confidence)
        h, w = frame.shape[:2]
        if max(h, w) < side:
            frame = cv2.resize(frame, (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w)))))
        border = max(frame.shape[:2]) // 2
        framed = cv2.copyMakeBorder(frame, border, border, border, border, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        return bool(self._crop_detector.process(framed).detections)

    def _landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Face Mesh on a square 1.8 x the box around the face; where that runs past the frame, the frame's border
        is extended (a tight crop gets the context the mesh's own detector needs)."""
        import cv2

        h, w = frame.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 1.8 * max(box[2] - box[0], box[3] - box[1])
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
        pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
        source = cv2.copyMakeBorder(frame, *pads, cv2.BORDER_REPLICATE) if any(pads) else frame
        crop = np.ascontiguousarray(source[y0 + pads[0]:y1 + pads[0], x0 + pads[2]:x1 + pads[2]])
        if crop.size == 0:
            return None
        result = self.mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        pts = result.multi_face_landmarks[0].landmark
        ch, cw = crop.shape[:2]
        # z is relative depth on the same scale as x (MediaPipe's convention): kept for head pose.
        return np.array([[p.x * cw + x0, p.y * ch + y0, p.z * cw] for p in pts], dtype=np.float64)


def track_faces(per_frame: list[list[FaceObservation]], min_iou: float = 0.3) -> list[FaceTrack]:
    """Greedy IoU association frame to frame; a face unseen for long starts a new track when it returns."""
    tracks: list[FaceTrack] = []
    for index, observations in enumerate(per_frame):
        taken: set[int] = set()
        for obs in sorted(observations, key=lambda o: -o.score):
            best, best_iou = None, min_iou
            for track in tracks:
                if track.id in taken or index - track.frames[-1] > 10:
                    continue
                overlap = iou(track.last_box, obs.box)
                if overlap > best_iou:
                    best, best_iou = track, overlap
            if best is None:
                best = FaceTrack(id=len(tracks))
                tracks.append(best)
            best.frames.append(index)
            best.observations.append(obs)
            taken.add(best.id)
    return tracks


def descriptors(landmarks: np.ndarray) -> dict[str, float]:
    """Geometric descriptors of one face, normalised by the inter-ocular distance, roll removed.

    Head pose comes from the 3-D landmark directions: yaw from the eye line's depth slope, pitch from the
    forehead-chin line's, roll from the eye line in the image. Approximate (a few degrees).
    """
    p3 = landmarks
    eye_vec3 = p3[L_EYE_OUT] - p3[R_EYE_OUT]
    vertical3 = p3[CHIN] - p3[FOREHEAD]
    p = p3[:, :2]
    eye_vec = eye_vec3[:2]
    iod = float(np.hypot(*eye_vec))
    if iod < 1e-6:
        return {}
    roll = np.arctan2(eye_vec[1], eye_vec[0])
    c, s = np.cos(-roll), np.sin(-roll)
    q = (p - p[R_EYE_OUT]) @ np.array([[c, s], [-s, c]]) / iod  # eye line horizontal, IOD = 1, y down

    def dist(a, b):
        return float(np.hypot(*(q[a] - q[b])))

    eye_open = (dist(R_LID_UP, R_LID_LOW) + dist(L_LID_UP, L_LID_LOW)) / 2
    brow_height = ((q[R_LID_UP, 1] - q[R_BROW_MID, 1]) + (q[L_LID_UP, 1] - q[L_BROW_MID, 1])) / 2
    inner_brow_gap = dist(R_BROW_IN, L_BROW_IN)
    mouth_centre_y = (q[LIP_UP_IN, 1] + q[LIP_LOW_IN, 1]) / 2
    corner_lift = mouth_centre_y - (q[MOUTH_R, 1] + q[MOUTH_L, 1]) / 2  # > 0: corners above the lip centre
    return {
        "brow_raise": brow_height,
        "brow_furrow": -inner_brow_gap,  # larger = brows closer together
        "eye_openness": eye_open,
        "eye_closure": -eye_open,
        "mouth_opening": dist(LIP_UP_IN, LIP_LOW_IN),
        "lip_corner_pull": corner_lift,
        "lip_corner_depression": -corner_lift,
        "jaw_drop": dist(NOSE_TIP, CHIN),
        "head_yaw": float(np.degrees(np.arctan2(eye_vec3[2], np.hypot(eye_vec3[0], eye_vec3[1])))),
        "head_pitch": float(np.degrees(np.arctan2(-vertical3[2], np.hypot(vertical3[0], vertical3[1])))),
        "head_roll": float(np.degrees(roll)),
    }


def active_mask(name: str, values: np.ndarray) -> np.ndarray:
    """Frames where a descriptor is clearly active, by its rule in DESCRIPTORS."""
    _, (rule, threshold), _ = DESCRIPTORS[name]
    finite = np.isfinite(values)
    if finite.sum() == 0:
        return np.zeros(len(values), bool)
    if rule == "abs":
        return finite & (values > threshold)
    if rule == "abs_mag":
        return finite & (np.abs(values) > threshold)
    calm = np.percentile(values[finite], 33)
    baseline = float(np.median(values[finite][values[finite] <= calm]))
    return finite & (values - baseline > threshold)


def choose_main_track(tracks: list[FaceTrack], n_frames: int, frame_size: tuple[int, int]) -> tuple[FaceTrack | None, str]:
    """The main speaker: present longest, largest, most central, most mouth motion. Returns (track, why)."""
    candidates = [t for t in tracks if len(t.frames) >= max(1, 0.2 * n_frames)] or tracks
    if not candidates:
        return None, "no face"
    if len(candidates) == 1:
        return candidates[0], "the only face tracked"
    w, h = frame_size
    rows = []
    for t in candidates:
        boxes = np.array([o.box for o in t.observations])
        size = float(np.mean((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) / (w * h))
        centre = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2 / w, (boxes[:, 1] + boxes[:, 3]) / 2 / h])
        centrality = float(1 - np.mean(np.hypot(centre[:, 0] - 0.5, centre[:, 1] - 0.5)) / 0.71)
        mouth = [descriptors(o.landmarks).get("mouth_opening", np.nan) for o in t.observations if o.landmarks is not None]
        motion = float(np.nanstd(mouth)) if len(mouth) > 1 else 0.0
        presence = len(t.frames) / n_frames
        rows.append((t, presence, size, centrality, motion))
    arr = np.array([r[1:] for r in rows])
    ranks = (arr - arr.min(0)) / np.maximum(arr.max(0) - arr.min(0), 1e-9)
    score = ranks @ np.array([0.3, 0.3, 0.15, 0.25])
    best = int(np.argmax(score))
    t, presence, size, centrality, motion = rows[best]
    why = (f"chosen among {len(candidates)} faces by presence ({presence:.0%} of frames), size ({size:.1%} of the "
           f"frame), centrality ({centrality:.2f}) and mouth motion ({motion:.3f} IOD)")
    return t, why


SMOOTH_SECONDS = 1.0  # the expression is averaged over this much of the clip around each frame


def smooth_expressions(times: np.ndarray, probs: np.ndarray, seconds: float = SMOOTH_SECONDS) -> np.ndarray:
    """Each frame's expression probabilities averaged with its neighbours within +-seconds/2 (frames without a
    face are skipped, not counted as neutral): one blurred frame does not flip the reading."""
    out = np.full_like(probs, np.nan)
    seen = np.isfinite(probs[:, 0])
    for i in np.flatnonzero(seen):
        near = seen & (np.abs(times - times[i]) <= seconds / 2)
        out[i] = probs[near].mean(axis=0)
    return out


def face_report(times: np.ndarray, per_frame: list[list[FaceObservation]], frame_size: tuple[int, int], period: float,
                expression_model: str = "omniemo face-expression", profile: FaceProfile | None = None):
    """(ModalityReport, cues, main track) for the faces seen in the sampled frames; ``profile``: a set's
    (``pipeline.adapt_faces``), named in the cues; each reading taken relative to its mean where it carries one (a
    model without re-standardising statistics; otherwise the nets that read the faces were re-standardised already)."""
    from omniemo.perception.evidence import ABSENT, PRESENT, Cue, ModalityReport

    n = len(per_frame)
    tracks = track_faces(per_frame)
    main, why = choose_main_track(tracks, n, frame_size)
    if main is None:
        reason = ("no face in the image" if n == 1 else f"no face in {n} sampled frames" if n
                  else "no video frame could be decoded")
        return ModalityReport(ABSENT, reason=reason, model=FACE_MODELS), [], None
    model = f"{FACE_MODELS}; expression: {expression_model}"
    present = np.zeros(n, bool)
    present[main.frames] = True
    probs = np.full((n, len(FER_CLASSES)), np.nan)
    desc = {name: np.full(n, np.nan) for name in DESCRIPTORS}
    boxes = [None] * n
    for index, obs in zip(main.frames, main.observations):
        boxes[index] = [round(float(v), 1) for v in obs.box]
        if obs.expression is not None:
            probs[index] = obs.expression
        if obs.landmarks is not None:
            for name, value in descriptors(obs.landmarks).items():
                desc[name][index] = value
    cues = [Cue("face.presence", "face", "presence", round(float(present.mean()), 3), "share of sampled frames",
                active_spans(times, present, period, min_frames=1), FACE_MODELS,
                confidence=float(np.mean([o.score for o in main.observations])),
                detail={"faces_tracked": len(tracks), "main_face": why})]
    read = np.isfinite(probs[:, 0])
    # the reading before a set's mean is taken out (``FaceProfile.offset``): what such a profile is made of
    log_mean = np.log(np.maximum(probs[read], 1e-12)).mean(axis=0) if read.any() else None
    if profile is not None and read.any():
        probs[read] = profile.apply(probs[read])
    raw = probs
    probs = smooth_expressions(np.asarray(times, dtype=float), probs)
    seen = np.isfinite(probs[:, 0])
    mean_probs = np.nanmean(probs[seen], axis=0) if seen.any() else np.zeros(len(FER_CLASSES))
    top = np.where(seen, np.nanargmax(np.where(seen[:, None], probs, -1), axis=1), -1)
    # frames whose face was too blurred or small for the outside models' full say (``expression.outside_say``)
    blurred = sum(1 for o in main.observations if o.sharpness is not None and o.sharpness < SHARPNESS_FULL)
    for k, cls in enumerate(FER_CLASSES):
        spans = active_spans(times, (top == k) & (probs[:, k] >= 0.35), period, min_frames=1)
        cues.append(Cue(f"face.expression.{cls}", "face", f"expression.{cls}", round(float(mean_probs[k]), 3),
                        "mean probability (smoothed over 1 s)", spans, expression_model,
                        confidence=round(float(mean_probs[k]), 3),
                        detail={"top_in_frames": int((top == k).sum()), "frames_with_face": int(seen.sum()),
                                **({"blurred_frames": blurred} if blurred else {}),
                                **({"adapted": profile.describe()} if profile is not None else {})}))
    for name, (unit, _, active_words) in DESCRIPTORS.items():
        values = desc[name]
        finite = np.isfinite(values)
        if not finite.any():
            continue
        spans = active_spans(times, active_mask(name, values), period, min_frames=2)
        cues.append(Cue(f"face.{name}", "face", name, round(float(np.nanmean(values)), 4), unit, spans,
                        "MediaPipe Face Mesh landmarks", detail={"active_means": active_words,
                        "min": round(float(np.nanmin(values)), 4), "max": round(float(np.nanmax(values)), 4)}))
    series = {"times": [round(float(t), 3) for t in times], "box": boxes,
              **{f"expression.{c}": probs[:, k].round(3).tolist() for k, c in enumerate(FER_CLASSES)},
              **{f"expression_raw.{c}": raw[:, k].round(3).tolist() for k, c in enumerate(FER_CLASSES)},
              **{name: np.round(v, 4).tolist() for name, v in desc.items()}}
    summary = {"faces_tracked": len(tracks), "main_face": why, "frames_with_main_face": int(present.sum()),
               "frames_sampled": n, "expression_mean": dict(zip(FER_CLASSES, np.round(mean_probs, 3).tolist())),
               "dominant_expression": FER_CLASSES[int(np.argmax(mean_probs))]}
    if log_mean is not None:
        summary["expression_log_mean"] = np.round(log_mean, 4).tolist()
    if profile is not None:
        summary["expression_adapted"] = profile.describe()
    grainy = sum(1 for o in main.observations if o.noise is not None and o.noise > NOISE_THRESHOLD)
    if grainy:
        summary["denoised_frames"] = grainy  # read after non-local means: the face was grainy in these frames
    if blurred:
        summary["blurred_frames"] = blurred  # the face was blurred or small: the outside models had less say, or none
    return ModalityReport(PRESENT, model=model, summary=summary, series=series), cues, main
