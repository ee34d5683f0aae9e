"""The CPU pipeline as a Predictor: cues -> fused emotion -> grounded reasoning in the reference format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omniemo.answers import render_output
from omniemo.labels import LabelSet, get_labelset
from omniemo.perception import extract_cues
from omniemo.perception.evidence import Evidence
from omniemo.perception.models import quiet_native_stderr
from omniemo.prediction import Prediction
from omniemo.reasoning.explain import build_reasoning, reasoning_text
from omniemo.reasoning.fusion import Fusion, fuse, text_concepts

TIMELINE_WINDOW = 5.0


def modality_inputs(ev: Evidence) -> dict[str, dict[str, float]]:
    """Each present modality's emotion distribution by concept, for fusion."""
    inputs: dict[str, dict[str, float]] = {}
    if ev.present("face"):
        inputs["face"] = dict(ev.modalities["face"].summary["expression_mean"])
    emotion = ev.cue("voice.emotion")
    if emotion is not None:
        inputs["voice"] = dict(emotion.detail["probabilities"])
    if ev.present("words") and ev.cue("words.sentiment") is not None:  # no tone without English to read it in
        counts = {c.name.split(".", 1)[1]: int(c.value) for c in ev.cues_of("words") if c.name.startswith("emotion.")}
        inputs["text"] = text_concepts(counts, float(ev.cue("words.sentiment").value))
    return inputs


class CuePipeline:
    """Offline CPU analysis: perception cues, speech-emotion model, fusion, grounded reasoning."""

    name = "pipeline"

    def __init__(self, fps: float = 5.0, modalities: str | None = None, timeline: bool = False,
                 keep_keyframes: bool = False, progress=None, enroll: list | None = None, adapt: list | None = None,
                 voice_profile=None, face_profile=None):
        """``enroll``: several clips of the speaker, for the speaker-normalised voice model; ``adapt``: several
        clips or images recorded the same way (a corpus, a session; any people), for the recording-set-centred
        voice model and the face nets re-standardised on the set's faces; ``voice_profile`` / ``face_profile``: made already
        (``speech_emotion.enroll_clips``, ``pipeline.adapt_to_set``)."""
        from omniemo.perception.pipeline import adapt_to_set, parse_modalities, validate_fps
        from omniemo.perception.speech_emotion import enroll_clips

        parse_modalities(modalities)  # bad options fail here, before any clip
        self.fps, self.modalities, self.timeline = validate_fps(fps), modalities, timeline
        self.keep_keyframes, self.progress = keep_keyframes, progress
        if bool(enroll) + bool(adapt) + (voice_profile is not None or face_profile is not None) > 1:
            raise ValueError("enrol a speaker or adapt to a recording set, not both")
        self.voice_profile, self.face_profile = voice_profile, face_profile
        with quiet_native_stderr():
            if enroll:
                self.voice_profile = enroll_clips(enroll)
            elif adapt:
                self.voice_profile, self.face_profile = adapt_to_set(adapt, modalities)

    def predict(self, path: str | Path, labels: str | LabelSet = "dfew") -> Prediction:
        with quiet_native_stderr():  # native log lines off, as in the CLI (OMNIEMO_NATIVE_LOGS=1 shows them)
            return self._predict(path, get_labelset(labels))

    def _predict(self, path: str | Path, labelset: LabelSet) -> Prediction:
        ev = extract_cues(path, fps=self.fps, modalities=self.modalities, progress=self.progress,
                          keep_keyframes=self.keep_keyframes, voice_profile=self.voice_profile,
                          face_profile=self.face_profile)
        fusion = fuse(modality_inputs(ev), labelset)
        sentences = build_reasoning(ev, fusion)
        missing = [m for m, r in ev.modalities.items() if r.status in ("absent", "not_measurable") and m in ("face", "voice", "words")]
        prediction = Prediction(
            path=str(path), label=fusion.label, probabilities=fusion.probabilities,
            output=render_output(reasoning_text(sentences), fusion.label), reasoning=sentences,
            contributions=fusion.contributions, missing_modalities=missing, backend=self.name, evidence=ev,
            fusion=fusion,
        )
        if self.timeline:
            prediction.timeline = timeline(path, ev, labelset)
        return prediction


def timeline(path: str | Path, ev: Evidence, labelset: LabelSet, window: float = TIMELINE_WINDOW) -> list[dict]:
    """Per-window fused emotion: the face frames in the window, the voice model's utterances that fall in it (the
    same utterances as the clip's voice emotion), the window's words (English, or none)."""
    duration = float(ev.clip["duration"])
    face = ev.modalities.get("face")
    face_times = np.array(face.series["times"], dtype=float) if face and face.status == "present" else np.zeros(0)
    emotion = ev.cue("voice.emotion")
    segments = emotion.detail["segments"] if emotion else []
    transcript = ev.cue("words.transcript")
    english = ev.present("words") and transcript is not None and transcript.detail.get("language") in (None, "en")
    words = ev.modalities["words"].summary.get("words", []) if english else []
    rows = []
    for start in np.arange(0.0, max(duration, 1e-6), window):
        end = min(duration, start + window)
        inputs: dict[str, dict[str, float]] = {}
        if face_times.size:
            inside = (face_times >= start) & (face_times < end)
            probs = {c.split(".", 1)[1]: np.array(v, dtype=float)[inside] for c, v in face.series.items() if c.startswith("expression.")}
            if inside.any() and np.isfinite(next(iter(probs.values()))).any():
                inputs["face"] = {c: float(np.nanmean(p)) for c, p in probs.items()}
        overlap = [(min(s["end"], end) - max(s["start"], start), s["probabilities"]) for s in segments]
        overlap = [(o, p) for o, p in overlap if o > 0.25]
        if overlap:
            labels = list(overlap[0][1])
            mixed = np.average([[p[lab] for lab in labels] for _, p in overlap], axis=0, weights=[o for o, _ in overlap])
            inputs["voice"] = dict(zip(labels, mixed.tolist()))
        said = [w["word"] for w in words if start <= w["start"] < end]
        if said:
            from omniemo.perception.words import text_tone

            tone = text_tone(" ".join(said))
            counts = {k: len(v) for k, v in tone["emotion_words"].items()}
            inputs["text"] = text_concepts(counts, tone["sentiment"]["compound"])
        fusion: Fusion = fuse(inputs, labelset)
        rows.append({"start": round(float(start), 2), "end": round(float(end), 2), "label": fusion.label if inputs else None,
                     "probabilities": fusion.probabilities, "modalities": sorted(inputs), "words": " ".join(said)})
    return rows
