import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, recall_score

from omniemo.eval import score
from omniemo.labels import DFEW, RAVDESS


def _random_predictions(labels, n, seed, p_unparseable=0.1):
    rng = np.random.default_rng(seed)
    truth = list(rng.choice(labels, n))
    pred = [t if rng.random() < 0.5 else str(rng.choice(labels)) for t in truth]
    pred = [None if rng.random() < p_unparseable else p for p in pred]
    return truth, pred


def test_matches_scikit_learn():
    truth, pred = _random_predictions(DFEW.labels, 400, seed=1)
    scores = score(truth, pred, "dfew", bootstrap=0)
    sk_pred = [p if p is not None else "(none)" for p in pred]
    classes = list(DFEW.labels)
    assert scores.war == pytest.approx(accuracy_score(truth, sk_pred))
    sk_recall = recall_score(truth, sk_pred, labels=classes, average=None, zero_division=0)
    assert [scores.recall[c] for c in classes] == pytest.approx(list(sk_recall))
    assert scores.uar == pytest.approx(np.mean(sk_recall))
    cm = confusion_matrix(truth, sk_pred, labels=classes + ["(none)"])
    assert np.array_equal(np.array(scores.confusion), cm[:-1])
    assert scores.unparseable == sum(p is None for p in pred)


def test_uar_averages_only_classes_present_in_truth():
    truth = ["happy", "happy", "sad", "sad"]
    pred = ["happy", "sad", "sad", "angry"]
    scores = score(truth, pred, "dfew", bootstrap=0)
    assert scores.uar == pytest.approx((0.5 + 0.5) / 2)
    assert set(scores.recall) == {"happy", "sad"}
    assert scores.uar == pytest.approx(balanced_accuracy_score(truth, pred))


def test_out_of_vocabulary_counts_as_wrong():
    scores = score(["happy", "sad"], ["happy", None], "dfew", bootstrap=0)
    assert scores.war == 0.5 and scores.unparseable == 1 and scores.confusion[1][-1] == 1


def test_ravdess_protocols():
    truth = ["calm", "calm", "neutral", "happy"]
    pred = ["neutral", "calm", "neutral", "happy"]
    paper = score(truth, pred, "ravdess", protocol="paper", bootstrap=0)
    corrected = score(truth, pred, "ravdess", protocol="corrected", bootstrap=0)
    assert paper.war == 0.75 and paper.recall["calm"] == 0.5
    assert "calm" in paper.classes and "calm" not in corrected.classes
    assert corrected.war == 1.0 and corrected.uar == 1.0 and corrected.support["neutral"] == 3
    # a DFEW-vocabulary model never says calm: recall 0 under paper, scored as neutral under corrected
    dfew_like = ["neutral", "neutral", "neutral", "happy"]
    assert score(truth, dfew_like, RAVDESS, "paper", bootstrap=0).recall["calm"] == 0.0
    assert score(truth, dfew_like, RAVDESS, "corrected", bootstrap=0).war == 1.0


def test_corrected_equals_paper_elsewhere():
    truth, pred = _random_predictions(DFEW.labels, 200, seed=3)
    a = score(truth, pred, "dfew", "paper", bootstrap=0)
    b = score(truth, pred, "dfew", "corrected", bootstrap=0)
    assert (a.war, a.uar) == (b.war, b.uar)


def test_bootstrap_interval_brackets_estimate_and_is_seeded():
    truth, pred = _random_predictions(DFEW.labels, 300, seed=2)
    s1 = score(truth, pred, "dfew", bootstrap=500, seed=7)
    s2 = score(truth, pred, "dfew", bootstrap=500, seed=7)
    assert s1.war_ci == s2.war_ci and s1.uar_ci == s2.uar_ci
    assert s1.war_ci[0] < s1.war < s1.war_ci[1]
    assert s1.uar_ci[0] < s1.uar < s1.uar_ci[1]
    # the half-width is close to the binomial standard error rule: 1.96 * sqrt(p(1-p)/n)
    half = (s1.war_ci[1] - s1.war_ci[0]) / 2
    assert half == pytest.approx(1.96 * np.sqrt(s1.war * (1 - s1.war) / 300), rel=0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="not in the dfew vocabulary"):
        score(["calm"], ["calm"], "dfew")
    with pytest.raises(ValueError, match="predictions"):
        score(["sad"], [], "dfew")
    with pytest.raises(ValueError, match="protocol"):
        score(["sad"], ["sad"], "dfew", protocol="lenient")


def test_expected_calibration_error():
    from omniemo.eval.metrics import expected_calibration_error

    # answers stated at 0.8 and right 8 times in 10: calibrated; stated at 0.9 and right half the time: 0.4 off
    assert expected_calibration_error(np.full(10, 0.8), np.arange(10) < 8) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(10, 0.9), np.arange(10) < 5) == pytest.approx(0.4)
    # two bins, weighted by their share of the answers
    assert expected_calibration_error([0.25, 0.25, 0.95, 0.95], [0, 0, 1, 1]) == pytest.approx(0.5 * 0.25 + 0.5 * 0.05)
