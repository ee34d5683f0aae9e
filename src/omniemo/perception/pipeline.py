"""`extract_cues`: one pass over a clip's frames and audio, every modality's measurements, one Evidence record.

Frames are streamed (one held at a time, plus a few key frames), so memory does not grow with the clip.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from omniemo.media import FixedRate, iter_frames, load_clip, probe
from omniemo.perception import appearance, body, pulse, voice, words
from omniemo.perception.evidence import (
    ABSENT,
    MODALITIES,
    NOT_MEASURABLE,
    PRESENT,
    SKIPPED,
    Cue,
    Evidence,
    ModalityReport,
)
from omniemo.perception.expression import FaceProfile, face_profile, shipped_config
from omniemo.perception.face import FaceAnalyzer, face_report
from omniemo.perception.models import IdlePool, quiet_native_stderr
from omniemo.perception.spans import active_spans

VIDEO_MODALITIES = ("face", "body", "pulse", "appearance")
AUDIO_MODALITIES = ("voice", "words")
DEFAULT_FPS = 5.0
BODY_FPS = 2.5
KEYFRAMES = 5
MAX_SIDE = 640
MAX_FPS = 30.0  # more than cameras record only analyses the same frames again


def validate_fps(fps: float) -> float:
    """The analysed frame rate, checked: a finite number above 0 and at most MAX_FPS."""
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a number, got {fps!r}") from None
    if not np.isfinite(fps) or not 0 < fps <= MAX_FPS:
        raise ValueError(f"fps must be above 0 and at most {MAX_FPS:g}, got {fps!r}")
    return fps


def parse_modalities(spec: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """'video,audio,text' groups or modality names (a string, or a tuple of them) -> modality names."""
    if not spec:
        return MODALITIES
    groups = {"video": VIDEO_MODALITIES, "audio": ("voice",), "text": ("words",), "all": MODALITIES}
    out: list[str] = []
    items = spec if isinstance(spec, tuple) else spec.split(",")
    for item in (s.strip().lower() for s in items if s.strip()):
        names = groups.get(item, (item,) if item in MODALITIES else None)
        if names is None:
            raise ValueError(f"unknown modality {item!r}: use video, audio, text or {', '.join(MODALITIES)}")
        out += [n for n in names if n not in out]
    return tuple(out)


def extract_cues(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    modalities: str | tuple[str, ...] | None = None,
    progress: Callable[[float, float], None] | None = None,
    keep_keyframes: bool = False,
    voice_profile=None,
    face_profile=None,
    keep_face_crops: bool = False,
) -> Evidence:
    """Measure every requested modality of ``path``. Raises a MediaError if the file cannot be read at all.

    ``voice_profile``: a VoiceProfile from ``speech_emotion.enroll_clips`` (several clips of the same speaker) or
    ``speech_emotion.adapt_clips`` (clips recorded the same way); the voice emotion then uses the model variant
    normalised that way instead of the single-clip one. ``face_profile``: a FaceProfile from ``adapt_faces`` (images
    or clips recorded alike); each face is then read by our nets re-standardised on the set's faces (or, for a model
    without the statistics for it, relative to the set's mean reading). ``keep_keyframes`` /
    ``keep_face_crops``: keep a few frames (``evidence.keyframes``, for reports) / the main face's aligned crops
    (``evidence.face_crops``, for adapting to a set) in memory, never in the JSON.
    """
    fps = validate_fps(fps)
    wanted = parse_modalities(modalities)
    with quiet_native_stderr():  # the native models' log lines stay out of a library user's terminal
        keep = {name for name, wanted_kept in (("keyframes", keep_keyframes), ("face_crops", keep_face_crops)) if wanted_kept}
        return _extract(path, fps, wanted, progress, keep, voice_profile, face_profile)


ADAPT_FPS = 1.0  # frames a second read from each clip of a set to adapt the face to: a few faces a clip suffice


def adapt_faces(paths, fps: float = ADAPT_FPS) -> FaceProfile:
    """A set's face profile from images or clips recorded alike (any people and expressions): the main face of
    each of up to ``MAX_ADAPT_CLIPS`` files (spread over the given order, the rest only where files without a face
    left too few). Unreadable files and files without a face are skipped. Our nets are re-standardised on the
    faces where the shipped model's weights file names the statistics for it (``ExpressionModel.home_statistics``;
    otherwise each reading is taken against the set's mean)."""
    from omniemo.media import MediaError
    from omniemo.perception.speech_emotion import MAX_ADAPT_CLIPS, spread_order

    log_means, crops = [], []
    for path in spread_order(paths):
        if len(log_means) >= MAX_ADAPT_CLIPS:
            break
        try:
            evidence = extract_cues(path, fps=fps, modalities=("face",), keep_face_crops=True)
        except MediaError:
            continue
        if "expression_log_mean" in evidence.modalities["face"].summary:
            log_means.append(np.array(evidence.modalities["face"].summary["expression_log_mean"]))
            crops.append(np.array(evidence.face_crops))
    if not shipped_config().get("conv_statistics"):
        return face_profile(log_means)
    profile = face_profile(log_means, crops)
    with FACE_ANALYZERS.lend() as faces:
        profile.home = faces.shipped_expression.nearest_home(profile.crops)
    return profile


def adapt_to_set(paths, modalities: str | tuple[str, ...] | None = None):
    """(VoiceProfile or None, FaceProfile or None) of a set of files recorded alike, for the voice and the face
    where ``modalities`` ask for them: each where the set has enough of it (clips with speech, files with a face).
    Raises a ValueError saying why when neither can be made."""
    from omniemo.perception.speech_emotion import adapt_clips

    wanted = parse_modalities(modalities)
    paths, profiles, why = list(paths), {}, []
    for name, adapt in (("voice", adapt_clips), ("face", adapt_faces)):
        if name in wanted:
            try:
                profiles[name] = adapt(paths)
            except ValueError as exc:
                why.append(str(exc))
    if not profiles:
        raise ValueError("; ".join(why) if why else "adapting to a set needs the voice or the face among the modalities")
    return profiles.get("voice"), profiles.get("face")


def _extract(path, fps, wanted, progress, keep: set[str], voice_profile, face_profile) -> Evidence:
    info = probe(path)
    evidence = Evidence(clip=info.to_dict(), settings={"fps": fps, "body_fps": min(fps, BODY_FPS),
                                                         "modalities": list(wanted), "max_side": MAX_SIDE})
    for name in MODALITIES:
        if name not in wanted:
            evidence.modalities[name] = ModalityReport(SKIPPED, reason="not requested")
    video_wanted = [m for m in VIDEO_MODALITIES if m in wanted]
    audio_wanted = [m for m in AUDIO_MODALITIES if m in wanted]
    # The audio branch (speech recogniser, voice measures, speech emotion) runs in a second thread beside the
    # video branch: the native models release the GIL, so on 2 cores the two overlap. It writes into its own
    # record, merged after the video cues, so the result does not depend on which finishes first.
    heard = Evidence(clip={"notes": []}, settings=evidence.settings)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omniemo-audio") as pool:
        audio_job = pool.submit(_audio, path, info, audio_wanted, heard, voice_profile) if audio_wanted else None
        if video_wanted:
            if info.has_video:
                _video(path, info, fps, video_wanted, evidence, progress, keep, face_profile)
            else:
                for m in video_wanted:
                    evidence.modalities[m] = ModalityReport(ABSENT, reason="the file has no video stream")
        if audio_job is not None:
            audio_job.result()  # an error in the audio branch surfaces here, as if it had run inline
    if heard.clip["notes"]:
        evidence.clip.setdefault("notes", []).extend(heard.clip["notes"])
    evidence.modalities.update(heard.modalities)
    evidence.cues += heard.cues
    evidence.timings.update(heard.timings)
    evidence.timings["total"] = round(time.perf_counter() - start, 3)
    evidence.modalities = {m: evidence.modalities[m] for m in MODALITIES}
    return evidence


# built once per process and lent to one clip at a time; new_clip() clears what one clip leaves behind
FACE_ANALYZERS = IdlePool(FaceAnalyzer)
POSE_ANALYZERS = IdlePool(body.PoseAnalyzer)
SEGMENTERS = IdlePool(appearance.Segmenter)


def _video(path, info, fps, wanted, evidence: Evidence, progress, keep, face_profile):
    needs_faces = bool({"face", "pulse", "appearance"} & set(wanted))
    with (FACE_ANALYZERS.lend() if needs_faces else contextlib.nullcontext()) as faces, \
            (POSE_ANALYZERS.lend() if "body" in wanted else contextlib.nullcontext()) as poser:
        if faces is not None:
            faces.new_clip(face_profile)
        if poser is not None:
            poser.new_clip()
        _read_video(faces, poser, path, info, fps, wanted, evidence, progress, keep, face_profile)


def _read_video(faces, poser, path, info, fps, wanted, evidence: Evidence, progress, keep, face_profile):
    import cv2

    start = time.perf_counter()
    period = 1.0 / fps
    body_every = max(1, round(fps / BODY_FPS))
    n_planned = len(FixedRate(fps).plan(info).times)
    key_indices = set(np.linspace(0, n_planned - 1, min(KEYFRAMES, n_planned)).round().astype(int).tolist())
    times, per_frame, keyframes = [], [], {}
    pose_times, pose_landmarks, energy = [], [], []
    prev_grey = None
    notes: list[str] = []
    face_seconds = pose_seconds = 0.0
    still = info.num_frames == 1  # a photograph: a tight face crop may escape the detector
    for index, (t, frame) in enumerate(iter_frames(path, FixedRate(fps), max_side=MAX_SIDE, notes=notes)):
        times.append(t)
        if faces is not None:
            t0 = time.perf_counter()
            found = faces(frame)
            if still and not found:
                whole = faces.whole_image(frame)
                found = [whole] if whole is not None else []
                notes.append("no face detected in the still image: the whole image was read as the face" if found
                             else "no face detected in the still image, nor in it read whole as a tight crop")
            per_frame.append(found)
            face_seconds += time.perf_counter() - t0
        if index in key_indices:
            keyframes[index] = frame
        small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (160, max(2, 160 * frame.shape[0] // frame.shape[1])))
        energy.append(body.motion_energy(prev_grey, small))
        prev_grey = small
        if poser is not None and index % body_every == 0:
            t0 = time.perf_counter()
            pose_times.append(t)
            pose_landmarks.append(poser(frame))
            pose_seconds += time.perf_counter() - t0
        if progress is not None:
            progress(t, info.duration)
    frame_shape = next(iter(keyframes.values())).shape if keyframes else (info.height or 0, info.width or 0)
    times = np.asarray(times)
    evidence.timings["decode+face"] = round(time.perf_counter() - start - pose_seconds, 3)
    evidence.timings["face_models"] = round(face_seconds, 3)
    main = None
    if "face" in wanted or "pulse" in wanted or "appearance" in wanted:
        report, cues, main = face_report(times, per_frame, (frame_shape[1], frame_shape[0]), period,
                                         faces.expression_model, face_profile)
        if "face" in wanted:
            evidence.modalities["face"] = report
            evidence.cues += cues
    if "body" in wanted:
        t0 = time.perf_counter()
        evidence.modalities["body"], cues = _body_report(np.asarray(pose_times), pose_landmarks, times, energy, fps)
        evidence.cues += cues
        evidence.timings["body"] = round(pose_seconds + time.perf_counter() - t0, 3)
    if "appearance" in wanted:
        t0 = time.perf_counter()
        evidence.modalities["appearance"], cues = _appearance_report(keyframes, times, per_frame, main)
        evidence.cues += cues
        evidence.timings["appearance"] = round(time.perf_counter() - t0, 3)
    if "pulse" in wanted:
        t0 = time.perf_counter()
        evidence.modalities["pulse"], cues = _pulse_report(path, times, main)
        evidence.cues += cues
        evidence.timings["pulse"] = round(time.perf_counter() - t0, 3)
    if notes:
        evidence.clip.setdefault("notes", []).extend(notes)
    if "face_crops" in keep:
        evidence.face_crops = [] if main is None else [o.crop for o in main.observations if o.crop is not None]
    if "keyframes" in keep:  # for reports: frames stay in memory, never in the JSON
        evidence.keyframes = [(float(times[i]), keyframes[i], _main_box(main, i)) for i in sorted(keyframes) if i < len(times)]


def _main_box(main, index):
    if main is None or index not in main.frames:
        return None
    return main.observations[main.frames.index(index)].box.tolist()


def _body_report(pose_times, landmarks, times, energy, fps):
    found = [lm is not None for lm in landmarks]
    if not landmarks or np.mean(found) < 0.3:
        return ModalityReport(ABSENT, reason=f"no body pose found in {sum(found)} of {len(landmarks)} frames",
                              model=body.BODY_MODEL), []
    period = 1.0 / min(fps, BODY_FPS)
    feats = [body.frame_features(lm) if lm is not None else None for lm in landmarks]
    col = lambda key: np.array([f[key] if f else np.nan for f in feats])  # noqa: E731
    widths = col("shoulder_width_px")
    hand_speed = np.fmax(body.speeds(pose_times, landmarks, body.L_WRIST, widths),
                         body.speeds(pose_times, landmarks, body.R_WRIST, widths))
    head_speed = body.speeds(pose_times, landmarks, body.NOSE, widths)
    hand_face, lean, raise_, openness = col("hand_to_face"), col("lean_deg"), col("shoulder_raise"), col("arm_openness")
    m = body.BODY_MODEL

    def mean(x):
        return round(float(np.nanmean(x)), 3) if np.isfinite(x).any() else None

    cues = [
        Cue("body.hand_activity", "body", "hand_activity", mean(hand_speed), "shoulder widths/s",
            active_spans(pose_times, hand_speed > body.HAND_SPEED_ACTIVE, period, 1), m,
            detail={"active_means": "gesturing"}),
        Cue("body.hands_near_face", "body", "hands_near_face", round(float(np.mean(hand_face < body.HAND_NEAR_FACE)), 3),
            "share of frames", active_spans(pose_times, hand_face < body.HAND_NEAR_FACE, period, 1), m,
            detail={"active_means": "a hand near the face"}),
        Cue("body.head_movement", "body", "head_movement", mean(head_speed), "shoulder widths/s",
            active_spans(pose_times, head_speed > body.HEAD_SPEED_ACTIVE, period, 1), m,
            detail={"active_means": "head moving"}),
        Cue("body.lean", "body", "lean", mean(lean), "degrees (positive: to the image right)",
            active_spans(pose_times, np.abs(lean) > body.LEAN_ACTIVE_DEG, period, 2), m,
            detail={"active_means": "leaning sideways"}),
        Cue("body.neck_length", "body", "neck_length", mean(raise_), "shoulder widths (smaller: shoulders raised)",
            [], m),
        Cue("body.arm_openness", "body", "arm_openness", mean(openness), "shoulder widths between wrists", [], m),
    ]
    energy = np.asarray(energy, dtype=float)
    cues.append(Cue("body.motion_energy", "body", "motion_energy", mean(energy), "mean grey change (0-255) per frame",
                    active_spans(times, energy > max(4.0, 2 * np.nanmedian(energy) if np.isfinite(energy).any() else 4.0), 1.0 / fps, 2),
                    "frame differencing", detail={"active_means": "much movement in the picture"}))
    cues = [c for c in cues if c.value is not None]
    series = {"times": pose_times.round(3).tolist(), "hand_speed": np.round(hand_speed, 3).tolist(),
              "head_speed": np.round(head_speed, 3).tolist(), "lean_deg": np.round(lean, 2).tolist()}
    return ModalityReport(PRESENT, model=m, summary={"frames_with_pose": int(sum(found)), "frames": len(found)},
                          series=series), cues


def _appearance_report(keyframes, times, per_frame, main):
    if main is None:
        return ModalityReport(NOT_MEASURABLE, reason="no face to anchor the clothing region",
                              model=appearance.APPEARANCE_MODEL), []
    with SEGMENTERS.lend() as seg:
        described = []
        for index, frame in sorted(keyframes.items()):
            box = _main_box(main, index)
            described.append((float(times[index]), appearance.describe_frame(frame, seg(frame), np.array(box) if box else None)))
    clothing: dict[str, float] = {}
    for _, d in described:
        for c in d.get("clothing", []):
            clothing[c["name"]] = clothing.get(c["name"], 0.0) + c["share"] / len(described)
    bright = [d["background_brightness"] for _, d in described if "background_brightness" in d]
    background: dict[str, float] = {}
    for _, d in described:
        for c in d.get("background", []):
            background[c["name"]] = background.get(c["name"], 0.0) + c["share"] / len(described)
    span = [[round(described[0][0], 3), round(described[-1][0], 3)]] if described else []
    m = appearance.APPEARANCE_MODEL
    cues = []
    top_clothes = [n for n, s in sorted(clothing.items(), key=lambda kv: -kv[1]) if s >= 0.15]
    if top_clothes:
        cues.append(Cue("appearance.clothing_colours", "appearance", "clothing_colours", top_clothes, "colour names",
                        span, m, detail={"shares": {k: round(v, 3) for k, v in clothing.items()}}))
    if bright:
        level = float(np.mean(bright))
        cues.append(Cue("appearance.background_brightness", "appearance", "background_brightness", round(level, 3),
                        "CIELAB lightness 0-1", span, m,
                        detail={"words": "dark" if level < 0.3 else "dim" if level < 0.5 else "bright" if level > 0.75 else "moderately lit"}))
    top_bg = [n for n, s in sorted(background.items(), key=lambda kv: -kv[1]) if s >= 0.2]
    if top_bg:
        cues.append(Cue("appearance.background_colours", "appearance", "background_colours", top_bg, "colour names", span, m))
    if not cues:
        return ModalityReport(NOT_MEASURABLE, reason="no person or background region large enough", model=m), []
    return ModalityReport(PRESENT, model=m, summary={"frames": [t for t, _ in described],
                          "not_measured": "indoor/outdoor, objects, garments (no scene model offline)"}), cues


def _pulse_report(path, times, main):
    m = pulse.PULSE_MODEL
    if main is None:
        return ModalityReport(NOT_MEASURABLE, reason="no face", model=m), []
    face_times = times[main.frames]
    visible = float(face_times[-1] - face_times[0]) if len(face_times) > 1 else 0.0
    if visible < pulse.MIN_SECONDS:
        return ModalityReport(NOT_MEASURABLE, reason=f"face visible for {visible:.1f} s; the pulse needs "
                              f"{pulse.MIN_SECONDS:.0f} s", model=m), []
    start, end = float(face_times[0]), float(min(face_times[-1], face_times[0] + pulse.MAX_SECONDS))
    landmark_times = np.array([times[i] for i, o in zip(main.frames, main.observations) if o.landmarks is not None])
    landmark_sets = [o.landmarks for o in main.observations if o.landmarks is not None]
    if not landmark_sets:
        return ModalityReport(NOT_MEASURABLE, reason="no face landmarks", model=m), []
    colours, stamps = [], []
    for t, frame in iter_frames(path, FixedRate(pulse.FPS), max_side=MAX_SIDE):
        if t > end:
            break  # past the pulse window: stop decoding (the rest of a long clip is not needed)
        if t < start:
            continue
        nearest = int(np.argmin(np.abs(landmark_times - t)))
        if abs(landmark_times[nearest] - t) > 0.5:
            continue
        colour = pulse.mean_skin_colour(frame, pulse.skin_regions(landmark_sets[nearest]))
        if colour is not None:
            colours.append(colour)
            stamps.append(t)
    if len(colours) < pulse.MIN_SECONDS * pulse.MIN_FPS:
        return ModalityReport(NOT_MEASURABLE, reason=f"only {len(colours)} usable face frames for the pulse", model=m), []
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    bpm, quality = pulse.estimate_bpm(np.array(colours), rate)
    summary = {"bpm": round(bpm, 1), "quality": round(quality, 3), "window": [round(start, 2), round(end, 2)],
               "frames": len(colours), "caution": "a rough optical estimate, not a medical measurement"}
    if not np.isfinite(bpm) or quality < pulse.QUALITY_FLOOR:
        return ModalityReport(NOT_MEASURABLE, reason=f"signal quality {quality:.2f} below {pulse.QUALITY_FLOOR}",
                              model=m, summary=summary), []
    cue = Cue("pulse.rate", "pulse", "rate", round(bpm, 1), "beats per minute", [[round(start, 2), round(end, 2)]],
              m, confidence=round(quality, 3), detail={"caution": summary["caution"]})
    return ModalityReport(PRESENT, model=m, summary=summary), [cue]


def _audio(path, info, wanted, evidence: Evidence, voice_profile=None):
    if not info.has_audio:
        for m in wanted:
            evidence.modalities[m] = ModalityReport(ABSENT, reason="the file has no audio track")
        return
    t0 = time.perf_counter()
    clip = load_clip(path, sampling=None)
    evidence.clip["notes"] += [n for n in clip.notes if n not in info.notes]
    evidence.timings["audio_decode"] = round(time.perf_counter() - t0, 3)
    if clip.audio.size < 0.2 * clip.sample_rate:
        for m in wanted:
            evidence.modalities[m] = ModalityReport(ABSENT, reason="the audio track is shorter than 0.2 s")
        return
    t0 = time.perf_counter()
    speech = voice.speech_spans(clip.audio, clip.sample_rate)
    if not speech:
        reason = f"no speech detected in {clip.audio.size / clip.sample_rate:.1f} s of audio"
        reason += "".join(f"; {n}" for n in clip.notes if "non-finite" in n)
        for m in wanted:
            evidence.modalities[m] = ModalityReport(ABSENT, reason=reason, model=voice.VOICE_MODEL)
        return
    # The words (Whisper, most of the audio branch's time) start as soon as the speech is found, in a thread
    # of their own, and the voice measures and the voice emotion run meanwhile; the words' cues still come last.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omniemo-words") as pool:
        words_job = pool.submit(_timed_words_report, clip.audio, speech) if "words" in wanted else None
        measured = voice.analyse_voice(clip.audio, clip.sample_rate, speech)
        evidence.timings["voice"] = round(time.perf_counter() - t0, 3)
        if "voice" in wanted:
            _voice_into(evidence, clip.audio, measured, voice_profile)
        if words_job is not None:
            (evidence.modalities["words"], cues), evidence.timings["words"] = words_job.result()
            evidence.cues += cues


def _voice_into(evidence: Evidence, audio: np.ndarray, measured: dict, voice_profile) -> None:
    evidence.modalities["voice"], cues = _voice_report(measured)
    evidence.cues += cues
    t0 = time.perf_counter()
    emotion, why_not = _voice_emotion(audio, measured["speech_spans"], voice_profile)
    if emotion is not None:
        evidence.cues.append(emotion)
        evidence.modalities["voice"].summary["emotion_probabilities"] = emotion.detail["probabilities"]
    else:
        evidence.modalities["voice"].summary["no_emotion"] = why_not
    evidence.timings["voice_emotion"] = round(time.perf_counter() - t0, 3)


def _timed_words_report(audio: np.ndarray, speech_spans):
    t0 = time.perf_counter()
    report = _words_report(audio, speech_spans)
    return report, round(time.perf_counter() - t0, 3)


def _voice_emotion(audio: np.ndarray, speech, voice_profile=None) -> tuple[Cue | None, str | None]:
    """(the speech-emotion cue, or None with the reason): the model on each detected utterance, aggregated."""
    from omniemo.perception import speech_emotion

    try:
        model = speech_emotion.default_model()
    except FileNotFoundError:
        return None, "the speech-emotion weights are not installed"
    heard = speech_emotion.segment_emotions(audio, speech, model, voice_profile)
    if heard is None:
        seconds = sum(b - a for a, b in speech)
        return None, (f"{seconds:.1f} s of detected speech is too little for a voice emotion "
                      f"(needs {speech_emotion.MIN_SPEECH_SECONDS} s)")
    probs = heard.probabilities
    top = int(np.argmax(probs))
    detail = {"probabilities": {label: round(float(p), 4) for label, p in zip(model.labels, probs)},
              "variant": voice_profile.describe() if voice_profile else "single clip",
              "segments": heard.segments, "speech_seconds": round(heard.speech_seconds, 2)}
    if heard.damped:
        detail["damped"] = (f"only {heard.speech_seconds:.1f} s of speech: pulled towards uniform "
                            f"(full confidence from {speech_emotion.FULL_CONFIDENCE_SECONDS} s)")
    return Cue("voice.emotion", "voice", "emotion", model.labels[top], "label (RAVDESS emotions)", speech,
               speech_emotion.MODEL_NAME, confidence=round(float(probs[top]), 3), detail=detail), None


def _voice_report(v: dict):
    m = voice.VOICE_MODEL
    speech = v["speech_spans"]
    longest = max((b - a for a, b in v["pauses"]), default=0.0)
    cues = [
        Cue("voice.speech", "voice", "speech", round(v["speech_seconds"], 2), "seconds of speech", speech, "Silero VAD"),
        Cue("voice.pauses", "voice", "pauses", len(v["pauses"]), "count", v["pauses"], "Silero VAD",
            detail={"longest_seconds": round(longest, 2)}),
    ]

    def add(key, name, unit, spans=speech, **detail):
        value = v.get(key)
        if value is not None and np.isfinite(value):
            cues.append(Cue(f"voice.{name}", "voice", name, round(float(value), 3), unit, spans, "openSMILE eGeMAPSv02",
                            detail=detail))

    add("pitch_median_hz", "pitch_level", "Hz (median F0 of voiced speech)",
        p10_hz=round(v.get("pitch_p10_hz", float("nan")), 1), p90_hz=round(v.get("pitch_p90_hz", float("nan")), 1))
    add("pitch_range_semitones", "pitch_range", "semitones (10th-90th percentile)")
    add("loudness_mean", "loudness", "eGeMAPS loudness (mean over speech)")
    add("loudness_variability", "loudness_variability", "coefficient of variation")
    add("jitter", "jitter", "relative period perturbation")
    add("shimmer_db", "shimmer", "dB")
    add("hnr_db", "hnr", "dB (harmonics-to-noise ratio)")
    if v.get("syllables"):
        cues.append(Cue("voice.speaking_rate", "voice", "speaking_rate", round(v["syllable_rate"], 2),
                        "syllables per second of speech (loudness peaks)", speech, "openSMILE loudness peaks",
                        detail={"syllables": v["syllables"]}))
    if v.get("loud_spans"):
        cues.append(Cue("voice.loud_stretches", "voice", "loud_stretches", len(v["loud_spans"]), "count",
                        v["loud_spans"], "openSMILE eGeMAPSv02", detail={"active_means": "clearly louder than the rest of the speech"}))
    if v.get("high_pitch_spans"):
        cues.append(Cue("voice.pitch_peaks", "voice", "pitch_peaks", len(v["high_pitch_spans"]), "count",
                        v["high_pitch_spans"], "openSMILE eGeMAPSv02", detail={"active_means": "the highest-pitched stretches"}))
    summary = {k: (round(val, 4) if isinstance(val, float) else val) for k, val in v.items() if k != "series"}
    return ModalityReport(PRESENT, model=m, summary=summary, series=v.get("series", {})), cues


def _words_report(audio: np.ndarray, speech_spans):
    transcript = words.transcribe(audio, speech_spans)
    ws = transcript["words"]
    if not ws:
        reason = "the speech recogniser found no words"
        if transcript["dropped"]:
            dropped = transcript["dropped"]
            reason += (f" it could vouch for; {len(dropped)} segment{'s' if len(dropped) > 1 else ''} dropped, "
                       f"{'the first ' if len(dropped) > 1 else ''}as {dropped[0]['why']}")
        return ModalityReport(ABSENT, reason=reason, model=words.WORDS_MODEL,
                              summary={"language": transcript["language"], "dropped": transcript["dropped"]}), []
    english = transcript["text"] if transcript["language"] == "en" else transcript["translation"]
    span = [[ws[0]["start"], ws[-1]["end"]]]
    confidence = float(np.mean([w["probability"] for w in ws]))
    detail = {"language": transcript["language"], "language_name": words.language_name(transcript["language"]),
              "language_probability": transcript["language_probability"], "words": len(ws),
              "translation": transcript["translation"], "tone_read_from": "transcript" if transcript["language"] == "en"
              else "English translation (Whisper translate)" if english else "nothing (no translation)"}
    cues = [Cue("words.transcript", "words", "transcript", transcript["text"], "text", span, words.WHISPER_NAME,
                confidence=round(confidence, 3), detail=detail)]
    if not english:  # nothing the English lexicons can read: the words are quoted, their tone is not scored
        return ModalityReport(PRESENT, model=words.WORDS_MODEL, summary={**transcript, "tone": None}), cues
    # word times exist for the transcript; a translation's words are placed on the transcript's span
    tone = words.text_tone(english, ws if transcript["language"] == "en" else None)
    sentiment = tone["sentiment"]
    trig_spans = [[t["start"], t["end"]] for t in sentiment["triggers"] if "start" in t]
    cues.append(Cue("words.sentiment", "words", "sentiment", sentiment["compound"], "VADER compound (-1 to 1)",
                    trig_spans or span, "VADER lexicon", detail={"triggers": sentiment["triggers"]}))
    for emotion, hits in tone["emotion_words"].items():
        cues.append(Cue(f"words.emotion.{emotion}", "words", f"emotion.{emotion}", len(hits), "NRC lexicon words",
                        [[h["start"], h["end"]] for h in hits if "start" in h] or span, "NRC emotion lexicon",
                        detail={"words": sorted({h["word"] for h in hits})}))
    return ModalityReport(PRESENT, model=words.WORDS_MODEL, summary={**transcript, "tone": tone}), cues
