"""The main job end to end: fused emotion with grounded reasoning, outputs, reports, missing modalities."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from omniemo.answers import format_ok, parse_label
from omniemo.cli import main
from omniemo.predictor import get_predictor
from omniemo.reasoning import fuse, verify
from omniemo.reasoning.fusion import shipped_weights, to_label_set

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


@pytest.fixture(scope="module")
def crema_predictions(crema_samples):
    predictor = get_predictor("pipeline", keep_keyframes=True)
    return {e: predictor.predict(crema_samples / f"1001_DFA_{e}_XX.flv", "cremad") for e in EMOTIONS}


def test_six_crema_clips_end_to_end(crema_predictions):
    for emotion, p in crema_predictions.items():
        assert format_ok(p.output), p.output
        assert parse_label(p.output, "cremad") == p.label
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert set(p.probabilities) == {"angry", "disgust", "fear", "happy", "neutral", "sad"}
        assert p.missing_modalities == []
        assert set(p.contributions) == {"face", "voice", "text"}
    assert crema_predictions["HAP"].label == "happy"


def test_every_sentence_is_grounded(crema_predictions):
    for p in crema_predictions.values():
        assert verify(p.reasoning, p.evidence, p.fusion) == []
        for sentence in p.reasoning[:-1]:
            assert sentence["cues"], sentence
        modalities = {c.split(".")[0] for s in p.reasoning for c in s["cues"]}
        assert {"face", "voice", "words", "appearance"} <= modalities


def test_verify_catches_invented_claims(crema_predictions):
    p = crema_predictions["ANG"]
    forged = [dict(s) for s in p.reasoning]
    forged[0] = {**forged[0], "text": forged[0]["text"] + " The brows furrow at 7.0-9.0 s."}
    forged[1] = {**forged[1], "text": "The face frowns 737 times, with a probability of 0.4321 of rage."}
    forged[2] = {**forged[2], "cues": ["face.wings"]}
    problems = verify(forged, p.evidence, p.fusion)
    assert any("7.0-9.0" in x for x in problems)
    assert any("737" in x for x in problems) and any("0.4321" in x for x in problems)
    assert any("face.wings" in x for x in problems)


def test_audio_only_clip(crema_samples):
    p = get_predictor("pipeline").predict(crema_samples / "1002_DFA_ANG_XX.mp3", "cremad")
    assert format_ok(p.output) and "face" in p.missing_modalities
    assert set(p.contributions) == {"voice", "text"}
    assert verify(p.reasoning, p.evidence, p.fusion) == []
    assert any(s.get("missing") == "face" for s in p.reasoning)


def test_no_face_no_audio(clips):
    p = get_predictor("pipeline").predict(clips["video_only"], "dfew")
    assert format_ok(p.output)
    assert set(p.missing_modalities) == {"face", "voice", "words"}
    assert len(set(p.probabilities.values())) == 1  # nothing measured, nothing favoured
    assert "guess" in p.reasoning[-1]["text"]


def test_fusion_subsets_and_label_sets():
    # as the models give them: every class of the modality (7 face expressions, 8 voice emotions)
    face = {"happy": 0.64, "neutral": 0.2, "sad": 0.1, "angry": 0.02, "fear": 0.02, "disgust": 0.01, "surprise": 0.01}
    voice = {"happy": 0.15, "calm": 0.5, "neutral": 0.25, "sad": 0.04, "angry": 0.02, "fear": 0.02, "disgust": 0.01,
             "surprise": 0.01}
    both = fuse({"face": face, "voice": voice}, "ravdess")
    assert both.label in ("happy", "calm") and set(both.contributions) == {"face", "voice"}
    assert fuse({"face": face}, "dfew").label == "happy"
    assert fuse({"voice": voice}, "ravdess").label == "calm"
    assert fuse({"voice": voice}, "dfew").label == "neutral"  # no calm in DFEW: the voice's next choice
    assert fuse({}, "mafw").probabilities["anxious"] == pytest.approx(1 / 11, abs=1e-3)
    custom = fuse({"face": face}, "happy,sad")
    assert set(custom.probabilities) == {"happy", "sad"} and custom.label == "happy"
    # a label the face cannot express borrows half of its nearest concept (calm <- neutral)
    dist = to_label_set({"neutral": 0.6, "happy": 0.4}, __import__("omniemo.labels", fromlist=["RAVDESS"]).RAVDESS)
    labels = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise")
    assert dist[labels.index("calm")] == pytest.approx(dist[labels.index("neutral")] / 2)
    # boredom (EmoDB) and frustration (IEMOCAP) likewise borrow from neutral and angry: never above them
    emodb = fuse({"face": face, "voice": voice}, "neutral,happy,sad,angry,fear,disgust,boredom")
    assert 0 < emodb.probabilities["boredom"] < emodb.probabilities["neutral"]
    frustrated = fuse({"voice": {"angry": 0.8, "neutral": 0.2}}, "neutral,angry,frustrated")
    assert frustrated.label == "angry" and frustrated.probabilities["frustrated"] > frustrated.probabilities["neutral"]
    # contributions: removing the only supporter of the answer lowers its probability
    strong = fuse({"face": {"angry": 0.9, "neutral": 0.1}, "voice": {"neutral": 0.5, "angry": 0.5}}, "dfew")
    assert strong.weights == {"face": shipped_weights()["face"], "voice": shipped_weights()["voice"]}
    assert strong.label == "angry" and strong.contributions["face"] > 0


def test_cli_json_and_report(crema_samples, tmp_path):
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["analyze", str(crema_samples / "1001_DFA_FEA_XX.flv"), "--labels", "cremad",
                                       "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"label", "probabilities", "contributions", "reasoning", "evidence", "output", "fusion"}
    assert set(data["fusion"]["weights"]) == set(data["contributions"]) == set(data["fusion"]["per_modality"])
    assert all(set(d) == set(data["probabilities"]) for d in data["fusion"]["per_modality"].values())
    assert all(s["cues"] for s in data["reasoning"][:-1])
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 4  # key frames, expression timeline, voice plot
    assert "EU AI Act" in page and "Transcript" in page and "<answer>" in page.replace("&lt;", "<").replace("&gt;", ">")
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch


def test_cli_batch_survives_a_bad_file(crema_samples, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    result = CliRunner().invoke(main, ["analyze", str(bad), str(crema_samples / "1002_DFA_HAP_XX.mp3"),
                                       "--labels", "cremad", "--modalities", "audio,text"])
    assert result.exit_code == 2
    assert f"{bad}" in result.output and "<answer>" in result.output


def test_a_truncated_clip_says_what_decoded_and_what_did_not(crema_samples, tmp_path):
    cut = tmp_path / "cut.flv"
    cut.write_bytes((crema_samples / "1001_DFA_ANG_XX.flv").read_bytes()[:20_000])  # the header, a few packets
    result = CliRunner().invoke(main, ["analyze", str(cut), "--labels", "cremad"])
    assert result.exit_code == 0, result.output
    assert "no video frame could be decoded" in result.stdout and "is a guess" in result.stdout
    assert f"note: {cut}: audio decodes to" in result.stderr and "(truncated?)" in result.stderr


def test_help_carries_the_ai_act_note():
    result = CliRunner().invoke(main, ["analyze", "--help"])
    assert result.exit_code == 0 and "EU AI Act" in result.output


def test_timeline_on_a_longer_clip(crema_samples, ravdess_speech, tmp_path):
    from omniemo import load_clip
    from omniemo.media.synth import write_frames

    frames = load_clip(crema_samples / "1001_DFA_HAP_XX.flv", "fps:5").frames
    voice = np.concatenate([load_clip(p, sampling=None).audio for p in sorted(ravdess_speech.glob("03-01-05-02-*-01.flac"))[:3]])
    seconds = 12
    path = write_frames(tmp_path / "long.mp4", [frames[i % len(frames)] for i in range(seconds * 5)], 5,
                        audio=np.resize(voice, seconds * 16000))
    p = get_predictor("pipeline", timeline=True).predict(path, "ravdess")
    assert [(r["start"], r["end"]) for r in p.timeline] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    assert all(r["label"] in p.probabilities for r in p.timeline)
    assert all("face" in r["modalities"] for r in p.timeline)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (.ci/run installs it from Debian)")
def test_report_renders_in_headless_chromium(crema_predictions, tmp_path):
    import cv2

    from omniemo.report import write_report

    page = write_report(crema_predictions["HAP"], tmp_path / "hap.html")
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1100,1600",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1600, 1100)
    assert image.std() > 20  # text, plots and frames were drawn, not a blank page


def test_enrolment_uses_the_speaker_normalised_voice_model(ravdess_speech):
    files = sorted(ravdess_speech.glob("03-01-*-24.flac"))
    single = get_predictor("pipeline", modalities="audio").predict(files[0], "ravdess")
    enrolled = get_predictor("pipeline", modalities="audio", enroll=files[1:12]).predict(files[0], "ravdess")
    assert single.evidence.cue("voice.emotion").detail["variant"] == "single clip"
    assert enrolled.evidence.cue("voice.emotion").detail["variant"] == "enrolled with the speaker (11 clips)"
    assert single.probabilities != enrolled.probabilities
    result = CliRunner().invoke(main, ["analyze", str(files[0]), "--labels", "ravdess", "--modalities", "audio",
                                       "--enroll", str(files[1]), "--enroll", str(files[2]), "--json"])
    assert result.exit_code == 0, result.output
    assert "enrolled with the speaker (2 clips)" in result.stdout


def test_adaptation_centres_the_voice_on_a_recording_set(ravdess_speech, tmp_path):
    files = sorted(ravdess_speech.glob("03-01-0[2-8]-01-01-01-2[34].flac"))
    adapted = get_predictor("pipeline", modalities="audio", adapt=files[1:12]).predict(files[0], "ravdess")
    cue = adapted.evidence.cue("voice.emotion")
    assert cue.detail["variant"] == "adapted to a recording set (11 clips)"
    assert "The voice model, adapted to a recording set (11 clips), hears" in adapted.output
    single = get_predictor("pipeline", modalities="audio").predict(files[0], "ravdess")
    assert single.probabilities != adapted.probabilities
    # a folder works, an unreadable file in it is skipped, and too few clips with speech is a clear error
    folder = tmp_path / "set"
    folder.mkdir()
    for f in files[1:4]:
        (folder / f.name).symlink_to(f)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00not audio")
    result = CliRunner().invoke(main, ["analyze", str(files[0]), "--labels", "ravdess", "--modalities", "audio",
                                       "--adapt", str(folder)])
    assert result.exit_code != 0 and "adaptation" in result.output and "got 3 of 4" in result.output
    with pytest.raises(ValueError, match="not both"):
        get_predictor("pipeline", enroll=files[1:3], adapt=files[1:12])


def test_report_charts_and_cue_chips(crema_predictions):
    from types import SimpleNamespace

    from omniemo.report import _voice_plot, render_html

    page = render_html(crema_predictions["ANG"])
    chip = page[page.index("<code tabindex='0' title='"):][:400]
    assert " = " in chip and " s" in chip  # value, unit and time span on hover
    silent_pitch = SimpleNamespace(series={"times": [0.0, 0.05, 0.1], "pitch_hz": [float("nan")] * 3,
                                           "loudness": [0.1, 0.2, 0.1]})
    assert _voice_plot(silent_pitch, [[0.0, 0.1]]).startswith("data:image/png;base64,")


def test_a_photograph_gets_no_claim_about_movement_or_time(crema_samples, tmp_path):
    import cv2

    from omniemo.media.decode import iter_frames

    _, frame = next(iter(iter_frames(crema_samples / "1001_DFA_HAP_XX.flv", "fps:5")))
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    p = get_predictor("pipeline").predict(photo, "cremad")
    assert p.evidence.clip["num_frames"] == 1 and p.missing_modalities == ["voice", "words"]
    assert verify(p.reasoning, p.evidence, p.fusion) == []
    think = p.output.split("</think>")[0]
    assert " s," not in think and " s." not in think and "0.0-" not in think  # no time span in a still image
    assert "stays mostly still" not in think and "resting positions" not in think
    assert "One still image: whether the body moves cannot be read." in think
