"""The shipped speech-emotion model, and its training recipe (determinism, splits, data hygiene)."""

import numpy as np
import pytest

from omniemo import load_clip
from omniemo.perception.speech_emotion import LABELS, SpeechEmotionModel, clip_features, default_model
from omniemo.train.speech_emotion import SpeechEmotionConfig, cremad_items, ravdess_items, train


def test_shipped_model_loads_and_predicts(ravdess_speech):
    model = default_model()
    assert model.labels == LABELS and model.card["licence"].startswith("CC BY-NC-SA")
    files = sorted(ravdess_speech.glob("03-01-*-21.flac"))[:6]
    feats = [clip_features(load_clip(f, sampling=None).audio) for f in files]
    single = model.predict_proba(np.vstack(feats))
    assert single.shape == (6, 8) and np.allclose(single.sum(axis=1), 1)
    enrolled = model.predict_proba(feats[0], speaker=model.enroll(feats))
    assert enrolled.shape == (8,) and enrolled.sum() == pytest.approx(1)
    with pytest.raises(ValueError):
        model.enroll(feats[:1])


def test_model_card_reports_scores_by_sex():
    from importlib import resources

    card = resources.files("omniemo.perception").joinpath("weights", "MODEL_CARD.md").read_text()
    for needle in ("female actors", "male actors", "CREMA-D dev", "openSMILE peer", "CC BY-NC-SA 4.0"):
        assert needle in card


def test_splits_follow_the_data_readme(ravdess_speech, shared_cremad):
    rav = ravdess_items(ravdess_speech)
    assert len(rav) == 1439
    actors = {split: {int(i.speaker[-2:]) for i in rav if i.split == split} for split in ("train", "dev", "test")}
    assert actors == {"train": set(range(1, 17)), "dev": set(range(17, 21)), "test": set(range(21, 25))}
    assert {i.sex for i in rav if i.speaker.endswith("21")} == {"male"}
    cre = cremad_items(shared_cremad)
    assert not any(("_TIE_" in i.path and "1006_" in i.path) or ("1013_WSI" in i.path) or ("1017_IWW" in i.path) for i in cre)
    assert {i.split for i in cre} == {"train", "dev"} and {i.label for i in cre} == {"angry", "disgust", "fear", "happy", "neutral", "sad"}


def test_training_is_deterministic(ravdess_speech, tmp_path):
    subset = tmp_path / "ravdess"
    subset.mkdir()
    for actor in ("01", "02", "17", "21"):
        for f in sorted(ravdess_speech.glob(f"03-01-*-{actor}.flac"))[::3]:
            (subset / f.name).symlink_to(f)
    runs = []
    for run in ("a", "b"):
        config = SpeechEmotionConfig(ravdess_root=subset, out_dir=tmp_path / run, cache=tmp_path / "cache.npz",
                                     baseline=False, workers=1, c_grid=(0.01, 0.1), shrinkage_grid=(0.3, 0.6))
        report = train(config)
        runs.append(SpeechEmotionModel.load(tmp_path / run / "speech_emotion.npz"))
        assert "ravdess/test" in report["variants"]["single"]
    a, b = runs
    for variant in ("single", "enrolled"):
        np.testing.assert_array_equal(a.weights[variant][0], b.weights[variant][0])
    assert (tmp_path / "a" / "MODEL_CARD.md").exists()
