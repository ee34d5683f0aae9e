"""The speech-emotion model (issue 12): four corpora, long recordings, non-speech, its recipe; words in any language."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from omniemo import load_clip
from omniemo.perception.speech_emotion import (
    LABELS,
    SpeechEmotionModel,
    clip_features,
    default_model,
    segment_emotions,
    utterances,
)
from omniemo.perception.voice import speech_spans


def test_shipped_model_loads_and_predicts(ravdess_speech):
    model = default_model()
    assert model.labels == LABELS and model.card["licence"].startswith("CC BY-NC-SA")
    files = sorted(ravdess_speech.glob("03-01-*-21.flac"))[:10]
    feats = []
    for f in files:
        audio = load_clip(f, sampling=None).audio
        feats.append(clip_features(audio, speech_spans(audio)))
    single = model.predict_proba(np.vstack(feats))
    assert single.shape == (10, 8) and np.allclose(single.sum(axis=1), 1)
    enrolled = model.predict_proba(feats[0], profile=model.enroll(feats))
    assert enrolled.shape == (8,) and enrolled.sum() == pytest.approx(1)
    with pytest.raises(ValueError):
        model.enroll(feats[:1])
    adapted = model.predict_proba(np.vstack(feats), profile=model.adapt(feats))
    assert adapted.shape == (10, 8) and np.allclose(adapted.sum(axis=1), 1)
    with pytest.raises(ValueError, match="at least 10 clips"):
        model.adapt(feats[:9])


def test_adaptation_removes_what_a_recording_set_shares():
    # a constant offset on every clip of a set (its room, microphone, language) changes single-clip answers
    # but not adapted ones: the set's mean carries it
    model = default_model()
    x = np.random.default_rng(0).normal(size=(12, len(model.global_mean))) * model.global_std + model.global_mean
    offset = 0.8 * model.global_std * np.sign(np.random.default_rng(1).normal(size=len(model.global_mean)))
    np.testing.assert_allclose(model.predict_proba(x + offset, profile=model.adapt(list(x + offset))),
                               model.predict_proba(x, profile=model.adapt(list(x))), atol=1e-9)
    assert not np.allclose(model.predict_proba(x + offset), model.predict_proba(x), atol=1e-3)


def test_model_card_has_the_leave_one_corpus_out_table():
    from importlib import resources

    card = resources.files("omniemo.perception").joinpath("weights", "MODEL_CARD.md").read_text()
    for needle in ("leave one corpus out", "| ased |", "| urdu |", "| cremad |", "| ravdess |", "previous model",
                   "RAVDESS test 21-24", "female actors", "CREMA-D dev", "CC BY-NC-SA 4.0"):
        assert needle in card


def test_long_recordings_read_per_utterance(ravdess_speech):
    # eight angry utterances of one test actor, with pauses: the whole reads angry, as each does alone
    pieces = []
    for f in sorted(ravdess_speech.glob("03-01-05-*-22.flac")):
        pieces += [load_clip(f, sampling=None).audio, np.zeros(8000, np.float32)]
    audio = np.concatenate(pieces)
    assert audio.size > 25 * 16_000
    spans = speech_spans(audio)
    heard = segment_emotions(audio, spans)
    assert len(heard.segments) >= 6 and not heard.damped
    assert LABELS[int(np.argmax(heard.probabilities))] == "angry"


def test_utterances_split_to_the_training_length():
    pieces = utterances([[0.0, 1.0], [1.2, 2.0], [5.0, 19.0], [30.0, 30.2]])
    assert pieces[0] == (0.0, 2.0)  # joined across a short pause
    assert all(b - a <= 6.0 + 1e-9 for a, b in pieces) and len(pieces) == 4  # 14 s in three pieces; 0.2 s dropped


def test_no_confident_emotion_from_a_tone_or_music(clips):
    from omniemo.perception import extract_cues

    t = np.arange(6 * 16_000) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    chords = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    for audio in (tone, (0.1 * chords).astype(np.float32)):
        heard = segment_emotions(audio, speech_spans(audio))
        assert heard is None or heard.probabilities.max() <= 0.5
    ev = extract_cues(clips[".wav"], modalities="audio")  # the synthetic voice-like tone: 0.3 s "speech" at most
    emotion = ev.cue("voice.emotion")
    assert emotion is None or emotion.confidence <= 0.5
    # nor a voice described from such a burst: no pitch, pace or loudness of a tone's onset
    from omniemo.reasoning.explain import voice_sentences

    said = " ".join(s["text"] for s in voice_sentences(ev))
    assert not any(word in said for word in ("pitch", "syllables", "loudness")), said


def test_a_quiet_recording_or_one_with_a_dc_offset_is_heard_like_the_original(ravdess_speech):
    """Silero found no speech in a recording at -60 dBFS, and less behind a DC offset: the detector reads the
    recording levelled, the voice model reads it without the offset."""
    from omniemo.perception.voice import detection_gain
    from omniemo.perception.words import transcribe

    audio = load_clip(ravdess_speech / "03-01-05-02-01-01-21.flac", sampling=None).audio.astype(np.float64)
    original = segment_emotions(audio.astype(np.float32), speech_spans(audio.astype(np.float32)))
    quiet = (audio * 10 ** (-40 / 20)).astype(np.float32)  # 40 dB quieter: a low-gain or distant microphone
    offset = (audio + 0.05).astype(np.float32)
    assert detection_gain(quiet)[1] > 10 and detection_gain(audio)[1] == 1.0  # a normal level is left as it is
    for changed in (quiet, offset):
        spans = speech_spans(changed)
        assert sum(b - a for a, b in spans) == pytest.approx(original.speech_seconds, abs=0.1)
        heard = segment_emotions(changed, spans)
        np.testing.assert_allclose(heard.probabilities, original.probabilities, atol=0.03)
    assert transcribe(quiet, speech_spans(quiet), threads=1)["text"] == "Kids are talking by the door."
    # raising a quiet recording does not make speech of what has none
    t = np.arange(3 * 16_000) / 16_000
    for faint in (1e-4 * np.random.default_rng(0).normal(size=t.size), 1e-3 * np.sin(2 * np.pi * 220 * t)):
        assert speech_spans(faint.astype(np.float32)) == []


def test_a_little_speech_lowers_the_confidence(ravdess_speech):
    audio = load_clip(ravdess_speech / "03-01-05-02-01-01-21.flac", sampling=None).audio
    spans = speech_spans(audio)
    full = segment_emotions(audio, spans)
    start = spans[0][0]
    short = segment_emotions(audio, [[start, start + 0.8]])
    assert short.damped and not full.damped and short.probabilities.max() < full.probabilities.max()
    assert segment_emotions(audio, [[start, start + 0.3]]) is None
    # a short word (0.45 s) is read, close to uniform: at most a quarter of the way from it
    word = segment_emotions(audio, [[start, start + 0.45]])
    assert word is not None and word.damped
    assert word.probabilities.max() < 1 / 8 + 0.3 * (1 - 1 / 8)


def test_augmentation_only_in_training(clips, monkeypatch):
    from omniemo.perception import extract_cues
    from omniemo.train import audio_augment
    from omniemo.train.speech_emotion import augment_seed

    audio = load_clip(clips[".wav"], sampling=None).audio
    a, b = audio_augment.augment(audio, 7), audio_augment.augment(audio, 7)
    assert np.array_equal(a, b)  # drawn from its seed: reproducible
    assert augment_seed("ravdess/x.flac", 1, 0) == augment_seed("ravdess/x.flac", 1, 0) != augment_seed("ravdess/x.flac", 2, 0)
    # the clipped copy: an overloaded input, 1-20 % of the samples at the rails, drawn from its seed
    c = audio_augment.clipped(audio, 7)
    assert np.array_equal(c, audio_augment.clipped(audio, 7)) and np.abs(c).max() == pytest.approx(0.99)
    assert 0.01 <= np.mean(np.abs(c) >= 0.989) <= 0.2 + 1e-3

    def forbidden(*args, **kwargs):
        raise AssertionError("analysis must never augment")

    monkeypatch.setattr(audio_augment, "augment", forbidden)
    extract_cues(clips[".wav"], modalities="audio")


def test_opus_round_trip_keeps_length_and_sound(clips):
    from omniemo.train.audio_augment import opus_round_trip

    audio = load_clip(clips[".wav"], sampling=None).audio
    out = opus_round_trip(audio, 16_000)
    assert out.size == audio.size and np.corrcoef(audio[2000:-2000], out[2000:-2000])[0, 1] > 0.8


def test_ased_and_urdu_layouts(tmp_path, clips):
    from omniemo.data.datasets import load_items

    for name in ("01Neutral/n1-01-01-01-01", "05Angry/a5-02-01-02-60", "04Sad/S4-04-02-01-29"):
        path = tmp_path / "ased" / f"{name}.ogg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(clips[".ogg"].read_bytes())
    items = load_items("ased", tmp_path / "ased", "all")
    assert sorted((i.label, i.split, i.meta["sex"]) for i in items) == [
        ("angry", "test", "male"), ("neutral", "train", "female"), ("sad", "train", "female")]
    for name in ("Angry/SM2_F2_A024", "Happy/SF1_F1_H001", "Neutral/SM5_F3_N010"):
        path = tmp_path / "urdu" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(clips[".wav"].read_bytes())
    items = {i.speaker: i for i in load_items("urdu", tmp_path / "urdu", "all")}
    assert {s: (i.label, i.split) for s, i in items.items()} == {
        "speaker-SM2": ("angry", "test"), "speaker-SF1": ("happy", "test"), "speaker-SM5": ("neutral", "train")}


def test_recipe_masks_the_classes_a_corpus_lacks():
    from omniemo.train.speech_emotion import balanced_weights, fit_masked_softmax

    rng = np.random.default_rng(0)
    # corpus A has classes 0, 1; corpus B has 1, 2: class 2 must not be pushed down for A's rows
    x = rng.normal(size=(300, 4))
    y = np.where(x[:, 0] > 0.5, 2, np.where(x[:, 0] < -0.5, 0, 1))
    corpus = np.where(np.arange(300) % 2, "A", "B")
    keep = ((corpus == "A") & (y != 2)) | ((corpus == "B") & (y != 0))
    x, y, corpus = x[keep], y[keep], corpus[keep]
    allowed = np.array([[c == "A" and k in (0, 1) or c == "B" and k in (1, 2) for k in range(3)] for c in corpus])
    w, b = fit_masked_softmax(x, y, allowed, balanced_weights(corpus, y), l2=0.01)
    assert np.mean(np.argmax(x @ w.T + b, axis=1) == y) > 0.8  # every class learnt, across corpora


def test_recipe_end_to_end_is_deterministic(ravdess_speech, shared_cremad, tmp_path):
    from omniemo.train.speech_emotion import SpeechEmotionConfig, train

    roots = {}
    for corpus, source, pattern in (("ravdess", ravdess_speech, "03-01-0[1458]-01-01-*-0[12].flac"),
                                    ("cremad", shared_cremad, "10[02][15]_IEO_*")):
        roots[corpus] = tmp_path / corpus
        roots[corpus].mkdir()
        for f in sorted(source.glob(pattern))[:24]:
            (roots[corpus] / f.name).symlink_to(f)
    runs = []
    for run in ("a", "b"):
        config = SpeechEmotionConfig(roots=roots, out_dir=tmp_path / run, cache=tmp_path / "cache.npz", workers=1,
                                     augment=1, clipped=1, legacy=False)
        report = train(config)
        assert report["config"]["clipped"] == 1 and "1 clipped copy" in (tmp_path / run / "MODEL_CARD.md").read_text()
        runs.append(SpeechEmotionModel.load(tmp_path / run / "speech_emotion.npz"))
        assert set(report["leave_one_corpus_out"]) == {"ravdess", "cremad"}
        # the held-out corpus is also scored through degraded recordings (its augmented copies)
        assert 0 <= report["leave_one_corpus_out"]["cremad"]["single_degraded"]["paper"]["uar"] <= 100
        assert 0 <= report["leave_one_corpus_out"]["ravdess"]["corpus"]["paper"]["uar"] <= 100
    for variant in ("single", "enrolled", "corpus"):
        np.testing.assert_array_equal(runs[0].weights[variant][0], runs[1].weights[variant][0])


# --- words in any language ----------------------------------------------------------------------------------------

def test_hallucination_filters():
    from omniemo.perception.words import _why_dropped, repetitive

    assert repetitive("So, so, so, so, so, so, so, so.")
    assert repetitive("What is it? What is it? What is it? What is it?")
    assert not repetitive("Kids are talking by the door, and the dogs are sitting by the door.")
    seg = SimpleNamespace(no_speech_prob=0.9, avg_logprob=-0.5, compression_ratio=1.2, text="Thank you for watching.")
    assert "not speech" in _why_dropped(seg, 0.0, 2.0, [[0.0, 2.0]])
    seg.no_speech_prob = 0.1
    assert "outside the detected speech" in _why_dropped(seg, 5.0, 7.0, [[0.0, 2.0]])
    assert _why_dropped(seg, 0.0, 2.0, [[0.0, 2.0]]) is None
    seg.avg_logprob = -1.4
    assert "a guess" in _why_dropped(seg, 0.0, 2.0, [[0.0, 2.0]])
    # fluent-looking text in a language Whisper guessed (Amharic written as Greek): its words unsure
    seg.avg_logprob, seg.words = -0.8, [SimpleNamespace(probability=p) for p in (0.3, 0.5, 0.45)]
    assert "mean word probability 0.42" in _why_dropped(seg, 0.0, 2.0, [[0.0, 2.0]])
    seg.words = [SimpleNamespace(probability=p) for p in (0.9, 0.6, 0.8)]
    assert _why_dropped(seg, 0.0, 2.0, [[0.0, 2.0]]) is None


def test_language_names_are_plain():
    from omniemo.perception.words import language_name

    assert [language_name(c) for c in ("ur", "el", "jw", "sw", None)] == [
        "Urdu", "Modern Greek", "Javanese", "Swahili", "unknown"]


def test_no_transcript_without_speech():
    from omniemo.perception.words import transcribe

    out = transcribe(np.zeros(32_000, np.float32), [])
    assert out["words"] == [] and out["language"] is None


def test_a_non_english_clip_gives_language_transcript_and_translation():
    from conftest import shared_dir

    from omniemo.perception import extract_cues

    clip = shared_dir("urdu") / "Sad" / "SM24_F17_S029.ogg"  # clear speech: no-speech 0.06, log-probability -0.58
    ev = extract_cues(clip, modalities="audio,text")
    transcript = ev.cue("words.transcript")
    assert transcript is not None and transcript.detail["language"] == "ur"
    assert transcript.detail["language_name"] == "Urdu" and transcript.detail["translation"]
    assert transcript.detail["tone_read_from"].startswith("English translation")
    from omniemo.predictor import get_predictor

    p = get_predictor("pipeline", modalities="audio,text").predict(clip, "urdu")
    words = next(s["text"] for s in p.reasoning if "words.transcript" in s["cues"])
    assert "Urdu" in words and "translation" in words


def test_a_language_the_recogniser_cannot_transcribe_is_not_quoted():
    """Whisper base on Amharic: it wrote this clip as Greek, "detected with probability 0.28", and translated it."""
    from conftest import shared_dir

    from omniemo.perception.words import transcribe

    audio = load_clip(shared_dir("ased-amharic") / "05Angry" / "a5-01-01-01-01.ogg", sampling=None).audio
    out = transcribe(audio, speech_spans(audio))
    assert out["words"] == [] and out["translation"] is None
    assert "word probability" in out["dropped"][0]["why"]


def test_a_shorter_whisper_context_is_off_and_keeps_the_speech():
    from omniemo.perception.models import whisper_model

    model = whisper_model()
    assert model.context_frames is None  # the full 30 s window: shorter ones cost the words (bench_whisper_context)
    window = np.zeros((80, 3000), np.float32)
    window[:, :250] = 0.3  # 2.5 s of speech, the rest padding
    model.context_frames = 1000
    try:
        assert model._trimmed(window).shape == (80, 1000)
        window[:, :1500] = 0.3
        assert model._trimmed(window).shape == (80, 1600)  # the speech and a 1 s margin
        assert model._trimmed(np.full((80, 3000), 0.3, np.float32)).shape == (80, 3000)
    finally:
        model.context_frames = None


def test_the_same_clip_gives_the_same_words_on_every_run():
    """Whisper's temperature fallback samples: it gave this clip a translation on some runs and none on others."""
    from conftest import shared_dir

    from omniemo.perception.words import transcribe

    audio = load_clip(shared_dir("urdu") / "Angry" / "SM2_F16_A038.ogg", sampling=None).audio
    spans = speech_spans(audio)
    first = transcribe(audio, spans)
    assert first["language"] == "ur" and all(transcribe(audio, spans) == first for _ in range(2))


def test_every_caller_gets_the_one_loaded_recogniser():
    from omniemo.perception.models import native_threads, whisper_model

    assert whisper_model() is whisper_model(None) is whisper_model(native_threads())


def test_the_recogniser_forgets_its_kept_encoder_pass_on_request():
    from omniemo.perception.models import whisper_model

    model = whisper_model()
    window = np.zeros((80, 3000), np.float32)
    first = model.encode(window)
    assert model.encode(window) is first  # kept: language, transcript and translation share one pass
    model.forget()
    assert model.encode(window) is not first


def test_adaptation_reads_a_spread_of_a_large_set(monkeypatch):
    import omniemo.perception.speech_emotion as se

    seen = {}

    def fake_features(paths, skip_unreadable=False, enough=None):
        seen.update(order=list(paths), skip=skip_unreadable, enough=enough)
        return [np.full(len(default_model().global_mean), float(i)) for i in range(12)]

    monkeypatch.setattr(se, "_speech_features", fake_features)
    paths = [f"clip-{i:03d}.wav" for i in range(250)]
    profile = se.adapt_clips(paths)
    assert profile.scope == "corpus" and profile.clips == 12 and np.allclose(profile.mean, 5.5)
    first = seen["order"][: se.MAX_ADAPT_CLIPS]
    assert first[0] == paths[0] and first[-1] == paths[-1] and len(set(first)) == se.MAX_ADAPT_CLIPS
    assert sorted(seen["order"]) == paths  # the rest follow, for when clips without speech leave too few
    assert seen["skip"] and seen["enough"] == se.MAX_ADAPT_CLIPS


def test_the_temperature_is_fitted_on_corpora_the_model_never_heard():
    """Held out, the softmax is overconfident: the temperature of the other held-out corpora flattens it, and
    each corpus is checked at a temperature fitted without it."""
    from omniemo.train.speech_emotion import held_out_calibration

    rng = np.random.default_rng(0)
    parts = {}
    for corpus in ("a", "b", "c"):
        y = rng.integers(0, 4, 400)
        # logits that point to the true class only half the time, at the sharpness of an in-domain model
        guess = np.where(rng.random(400) < 0.5, y, rng.integers(0, 4, 400))
        logits = 3.0 * np.eye(4)[guess] + rng.normal(0, 0.3, (400, 4))
        allowed = np.ones((400, 4), bool)
        allowed[:, 3] = corpus != "c"  # one corpus lacks a class: its softmax runs over its own three
        parts[corpus] = (logits, y, allowed)
    out = held_out_calibration(parts)
    assert out["temperature"] > 1.5
    for corpus, r in out["corpora"].items():
        assert r["other_corpora_temperature"] > 1.5
        assert r["at_other_corpora_temperature"]["ece"] < r["as_trained"]["ece"]
        assert r["at_other_corpora_temperature"]["nll"] < r["as_trained"]["nll"]
        assert r["at_other_corpora_temperature"]["accuracy"] == r["as_trained"]["accuracy"]  # the answer is the same


def test_the_shipped_voice_model_is_calibrated_for_recordings_it_never_heard():
    """The shipped temperatures are the ones the recipe fitted on held-out corpora, not the dev speakers'."""
    from importlib import resources

    weights = resources.files("omniemo.perception").joinpath("weights")
    scores = json.loads(weights.joinpath("speech_emotion_scores.json").read_text())
    model = default_model()
    for variant, r in scores["calibration"].items():
        assert model.temperature[variant] == pytest.approx(r["temperature"])
        assert r["temperature"] != pytest.approx(scores["shipped"][variant]["dev_calibration"]["dev_temperature"])


def test_an_uncertain_language_is_called_a_guess():
    from omniemo.perception.evidence import Cue, Evidence, ModalityReport
    from omniemo.reasoning.explain import words_sentences

    def sentence(probability):
        detail = {"language": "hi", "language_name": "Hindi", "language_probability": probability, "translation": None}
        ev = Evidence(clip={}, settings={}, modalities={"words": ModalityReport("present")},
                      cues=[Cue("words.transcript", "words", "transcript", "क्या हुआ", "text", [[0.0, 1.0]], "whisper",
                                detail=detail)])
        return words_sentences(ev)[0]["text"]

    assert "uncertain guess of the language" in sentence(0.36)
    assert "uncertain" not in sentence(0.8) and "probability 0.80" in sentence(0.8)
