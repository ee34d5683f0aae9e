"""Perception on real clips (../shared/data/crema-d-samples) and generated edge cases."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from omniemo import load_clip
from omniemo.media.synth import write_clip, write_frames
from omniemo.perception import SCHEMA, extract_cues, json_schema, parse_modalities
from omniemo.perception.pulse import QUALITY_FLOOR, estimate_bpm

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


@pytest.fixture(scope="module")
def crema_evidence(crema_samples):
    return {e: extract_cues(crema_samples / f"1001_DFA_{e}_XX.flv") for e in EMOTIONS}


def test_real_clips_have_every_cue_family(crema_evidence):
    for emotion, ev in crema_evidence.items():
        assert ev.schema == SCHEMA
        for modality in ("face", "body", "appearance", "voice", "words"):
            assert ev.present(modality), (emotion, modality, ev.modalities[modality].reason)
        assert ev.modalities["pulse"].status == "not_measurable" and "needs 8 s" in ev.modalities["pulse"].reason
        face = ev.modalities["face"]
        assert face.summary["faces_tracked"] == 1 and face.summary["frames_with_main_face"] >= 0.9 * face.summary["frames_sampled"]
        probs = [ev.cue(f"face.expression.{c}").value for c in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")]
        assert sum(probs) == pytest.approx(1.0, abs=0.02)
        assert 0.03 < ev.cue("face.eye_openness").value < 0.3
        assert 0.1 < ev.cue("face.brow_raise").value < 0.4
        assert abs(ev.cue("face.head_yaw").value) < 20 and abs(ev.cue("face.head_roll").value) < 15
        pitch = ev.cue("voice.pitch_level")  # absent when under 0.1 s is voiced (the noisy SAD clip)
        assert pitch is None or 70 < pitch.value < 300
        assert 0.5 < ev.cue("voice.speech").value < ev.clip["duration"]
        assert 1.0 < ev.cue("voice.speaking_rate").value < 9.0
        assert 0 < ev.cue("voice.loudness").value < 5
        speech = ev.cue("voice.speech").spans
        assert speech[0][0] >= 0 and speech[-1][1] <= ev.clip["duration"] + 0.05
        assert ev.cue("appearance.clothing_colours").value
        for cue in ev.cues:  # every cue is grounded: spans inside the clip, a model named
            assert cue.model and all(0 <= a <= b <= ev.clip["duration"] + 0.5 for a, b in cue.spans), cue


def test_pitch_follows_the_speaker(crema_evidence, ravdess_speech):
    pitches = [ev.cue("voice.pitch_level").value for ev in crema_evidence.values() if ev.cue("voice.pitch_level")]
    assert len(pitches) >= 4 and 100 < np.median(pitches) < 180  # actor 1001 is a man
    assert crema_evidence["FEA"].cue("voice.pitch_level").value > crema_evidence["NEU"].cue("voice.pitch_level").value
    male = extract_cues(ravdess_speech / "03-01-01-01-01-01-01.flac", modalities="audio")
    female = extract_cues(ravdess_speech / "03-01-01-01-01-01-02.flac", modalities="audio")
    assert male.cue("voice.pitch_level").value < 160 < female.cue("voice.pitch_level").value


def test_transcript_and_expressions(crema_evidence):
    assert "jacket" in crema_evidence["ANG"].cue("words.transcript").value.lower()
    transcripts = [ev.cue("words.transcript").value.lower() for ev in crema_evidence.values()]
    assert sum("forget" in t for t in transcripts) >= 5
    words = crema_evidence["ANG"].modalities["words"].summary["words"]
    assert all(w["start"] <= w["end"] for w in words) and words[0]["start"] < 1.0
    # the face model reads the acted happy clip as happy, and the happy face pulls the lip corners most
    happy = crema_evidence["HAP"]
    assert happy.modalities["face"].summary["dominant_expression"] == "happy"
    pulls = {e: ev.cue("face.lip_corner_pull").value for e, ev in crema_evidence.items()}
    assert max(pulls, key=pulls.get) == "HAP"


def test_record_validates_against_its_schema(crema_evidence):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(crema_evidence["SAD"].to_json())
    jsonschema.validate(data, json_schema())
    again = type(crema_evidence["SAD"]).from_dict(data)
    assert [c.id for c in again.cues] == [c.id for c in crema_evidence["SAD"].cues]


def test_audio_only_file(crema_samples):
    ev = extract_cues(crema_samples / "1002_DFA_ANG_XX.mp3")
    for modality in ("face", "body", "pulse", "appearance"):
        assert ev.modalities[modality].status == "absent" and "no video" in ev.modalities[modality].reason
    assert ev.present("voice") and ev.present("words")


def test_no_face_no_audio_track(clips):
    ev = extract_cues(clips["video_only"])
    assert ev.modalities["face"].status == "absent" and "no face in 10 sampled frames" == ev.modalities["face"].reason
    assert ev.modalities["appearance"].status == "not_measurable"
    assert ev.modalities["pulse"].status == "not_measurable"
    for modality in ("voice", "words"):
        assert ev.modalities[modality].status == "absent" and "no audio track" in ev.modalities[modality].reason
    assert ev.cues_of("face") == []


def test_silence(clips):
    ev = extract_cues(clips["silent"], modalities="audio,text")
    for modality in ("voice", "words"):
        assert ev.modalities[modality].status == "absent"
        assert ev.modalities[modality].reason.startswith("no speech detected")
    assert ev.modalities["face"].status == "skipped"


def test_modality_selection():
    assert parse_modalities("video") == ("face", "body", "pulse", "appearance")
    assert parse_modalities("audio,text") == ("voice", "words")
    assert parse_modalities("face,voice") == ("face", "voice")
    with pytest.raises(ValueError):
        parse_modalities("smell")


def _face_frame(crema_samples):
    frame = load_clip(crema_samples / "1001_DFA_NEU_XX.flv", "uniform:1").frames[0]
    return frame[60:240, 130:310]  # head and shoulders of the actor


def test_two_faces_main_speaker_is_the_larger(crema_samples, tmp_path):
    import cv2

    face = _face_frame(crema_samples)
    small = cv2.resize(face, (face.shape[1] * 3 // 5, face.shape[0] * 3 // 5))
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[60:60 + face.shape[0], 40:40 + face.shape[1]] = face
    canvas[120:120 + small.shape[0], 430:430 + small.shape[1]] = small
    path = write_frames(tmp_path / "two.mp4", [canvas] * 20, 10)
    ev = extract_cues(path, modalities="face")
    summary = ev.modalities["face"].summary
    assert summary["faces_tracked"] == 2 and "chosen among 2 faces" in summary["main_face"]
    boxes = [b for b in ev.modalities["face"].series["box"] if b]
    assert all(b[2] < 320 for b in boxes)  # the larger face on the left is the main one


@pytest.mark.parametrize("bpm", [66, 96])
def test_pulse_recovered_from_a_face_with_known_pulse(crema_samples, tmp_path, bpm):
    base = load_clip(crema_samples / "1001_DFA_NEU_XX.flv", "uniform:1").frames[0].astype(np.float32)
    fps, seconds = 15, 12
    rng = np.random.default_rng(bpm)

    def frames():
        for i in range(fps * seconds):
            f = base.copy()
            # blood-volume pulse tints skin, most in green (typical PPG colour signature)
            f[85:200, 160:280] *= 1 + 0.012 * np.sin(2 * np.pi * bpm / 60 * i / fps) * np.array([0.33, 0.77, 0.53])
            yield np.clip(f + rng.normal(0, 1.0, f.shape), 0, 255).astype(np.uint8)

    ev = extract_cues(write_frames(tmp_path / "pulse.mp4", frames(), fps), modalities="face,pulse")
    assert ev.present("pulse"), ev.modalities["pulse"].reason
    assert abs(ev.cue("pulse.rate").value - bpm) <= 4
    assert ev.cue("pulse.rate").confidence >= 0.25


def test_pulse_from_colour_traces():
    fps, n = 15.0, 180
    t = np.arange(n) / fps
    rng = np.random.default_rng(0)
    skin = np.array([170.0, 120.0, 100.0])
    trace = skin * (1 + 0.005 * np.sin(2 * np.pi * 1.3 * t)[:, None] * np.array([0.33, 0.77, 0.53]))
    bpm, quality = estimate_bpm(trace + rng.normal(0, 0.2, trace.shape), fps)
    assert abs(bpm - 78) <= 3 and quality > QUALITY_FLOOR
    _, noise_quality = estimate_bpm(skin + rng.normal(0, 0.5, (n, 3)), fps)
    assert noise_quality < QUALITY_FLOOR  # colour noise alone is "not measurable"


def test_no_network_during_analysis(crema_samples, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("perception tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ev = extract_cues(crema_samples / "1001_DFA_FEA_XX.flv")
    assert ev.present("words") and ev.present("face")


def test_ten_minute_file_in_bounded_memory(tmp_path):
    long_clip = write_clip(tmp_path / "long.mp4", 600.0, fps=10, size=(320, 240))
    short_clip = write_clip(tmp_path / "short.mp4", 60.0, fps=10, size=(320, 240))
    # VmHWM is this process's own peak since exec; getrusage's ru_maxrss survives exec and can report the
    # parent's (a test session that has loaded models) instead
    code = ("import re, sys; from omniemo.perception import extract_cues; "
            "ev = extract_cues(sys.argv[1], fps=1, modalities='video,audio'); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
            "print(int(hwm) // 1024, ev.clip['duration'])")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    peaks = {}
    for name, path in (("long", long_clip), ("short", short_clip)):
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True)
        peaks[name] = int(out.stdout.split()[0])
    assert peaks["long"] < 1500
    assert peaks["long"] - peaks["short"] < 250  # ten times the clip, nearly the same memory


def test_voice_emotion_on_speech_longer_than_the_encoder_window(ravdess_speech):
    from omniemo.perception.speech_emotion import clip_features, default_model

    audio = np.concatenate([load_clip(p, sampling=None).audio for p in sorted(ravdess_speech.glob("03-01-*-01.flac"))[:12]])
    assert audio.size > 35 * 16_000  # past Whisper's 30 s window
    probs = default_model().predict_proba(clip_features(audio))
    assert probs.shape == (8,) and probs.sum() == pytest.approx(1.0)


def test_models_lent_between_clips_carry_nothing_over(crema_samples):
    """The video models are built once and lent to each clip: a clip reads the same before and after another,
    pose tracking and its smoothing included."""
    from omniemo.perception.pipeline import FACE_ANALYZERS, POSE_ANALYZERS

    clip, other = crema_samples / "1001_DFA_SAD_XX.flv", crema_samples / "1001_DFA_HAP_XX.flv"
    video = ("face", "appearance", "body")
    first = extract_cues(clip, modalities=video).to_dict()
    lent = FACE_ANALYZERS._idle[-1], POSE_ANALYZERS._idle[-1]
    extract_cues(other, modalities=video)
    again = extract_cues(clip, modalities=video).to_dict()
    assert (FACE_ANALYZERS._idle[-1], POSE_ANALYZERS._idle[-1]) == lent  # the same models served all three clips
    assert first["modalities"]["body"]["status"] == "present"
    assert first["cues"] == again["cues"] and first["modalities"] == again["modalities"]


@pytest.mark.parametrize("chosen", [None, "ACTIVE"])
def test_whisper_threads_wait_passively_unless_the_user_chose(chosen):
    # libgomp prints the policy it read when CTranslate2 loads it (OMP_DISPLAY_ENV); the process keeps no trace
    code = ("import os; from omniemo.perception.models import import_faster_whisper; import_faster_whisper(); "
            "print('after', os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_DISPLAY_ENV"] = "TRUE"
    if chosen:
        env["OMP_WAIT_POLICY"] = chosen
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"OMP_WAIT_POLICY = '{chosen or 'PASSIVE'}'" in run.stderr
    assert f"after {chosen}" in run.stdout
