"""WAR, UAR, per-class recall, confusion matrix and bootstrap intervals, under two named protocols.

- WAR (weighted average recall) = accuracy: each class's recall weighted by its share of the ground truth.
- UAR (unweighted average recall) = mean recall over the classes present in the ground truth.
- A prediction outside the vocabulary (None) is wrong and stays in the denominator.

Protocols:
- ``paper``: the R1-Omni evaluation scripts' rules. Every label is its own class; on RAVDESS "calm" stays a
  class, which a model trained on the DFEW/MAFW vocabulary can never predict.
- ``corrected``: on RAVDESS, "calm" is scored as "neutral" (in the ground truth and in predictions), so the
  7 remaining classes are scored. On every other vocabulary it equals ``paper``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from omniemo.labels import LabelSet, get_labelset

PROTOCOLS = ("paper", "corrected")
UNPARSEABLE = "(unparseable)"


@dataclass
class Scores:
    protocol: str
    labelset: str
    classes: list[str]
    n: int
    war: float
    uar: float
    recall: dict[str, float]
    support: dict[str, int]
    confusion: list[list[int]]  # rows: ground truth in `classes` order; columns: `classes` + UNPARSEABLE
    unparseable: int
    war_ci: tuple[float, float] | None = None
    uar_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def protocol_mapping(labelset: LabelSet, protocol: str) -> tuple[list[str], dict[str, str]]:
    """Scored classes and the label merges a protocol applies."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if protocol == "corrected" and labelset.name == "ravdess":
        merge = {"calm": "neutral"}
        return [c for c in labelset.labels if c not in merge], merge
    return list(labelset.labels), {}


def score(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    labels: str | LabelSet,
    protocol: str = "paper",
    bootstrap: int = 1000,
    seed: int = 0,
) -> Scores:
    """Score predictions (labels of the vocabulary, or None for unparseable) against ground-truth labels."""
    labelset = get_labelset(labels)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("nothing to score: no items")
    classes, merge = protocol_mapping(labelset, protocol)
    index = {c: i for i, c in enumerate(classes)}
    other = len(classes)
    truth = np.empty(len(y_true), np.int64)
    for i, label in enumerate(y_true):
        label = merge.get(label, label)
        if label not in index:
            raise ValueError(f"ground-truth label {label!r} is not in the {labelset.name} vocabulary")
        truth[i] = index[label]
    pred = np.array([index.get(merge.get(p, p), other) if p is not None else other for p in y_pred], np.int64)

    k = len(classes)
    confusion = np.zeros((k, k + 1), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    support = confusion.sum(axis=1)
    hits = np.diag(confusion[:, :k])
    present = support > 0
    recall = np.where(present, hits / np.maximum(support, 1), np.nan)

    result = Scores(
        protocol=protocol,
        labelset=labelset.name,
        classes=classes,
        n=int(len(truth)),
        war=float(hits.sum() / len(truth)),
        uar=float(np.mean(recall[present])),
        recall={c: float(r) for c, r, p in zip(classes, recall, present) if p},
        support={c: int(s) for c, s in zip(classes, support)},
        confusion=confusion.tolist(),
        unparseable=int((pred == other).sum()),
    )
    if bootstrap:
        result.war_ci, result.uar_ci = bootstrap_intervals(truth, pred, k, bootstrap, seed)
    return result


def bootstrap_intervals(truth: np.ndarray, pred: np.ndarray, k: int, rounds: int = 1000, seed: int = 0):
    """95 % percentile intervals for WAR and UAR, resampling items with replacement."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    idx = rng.integers(0, n, size=(rounds, n))
    t, correct = truth[idx], (truth == pred)[idx]
    war = correct.mean(axis=1)
    offsets = (np.arange(rounds) * k)[:, None]
    support = np.bincount((t + offsets).ravel(), minlength=rounds * k).reshape(rounds, k)
    hits = np.bincount((t + offsets).ravel(), weights=correct.ravel(), minlength=rounds * k).reshape(rounds, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        uar = np.nanmean(np.where(support > 0, hits / support, np.nan), axis=1)

    def interval(x):
        lo, hi = np.percentile(x, [2.5, 97.5])
        return (float(lo), float(hi))

    return interval(war), interval(uar)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the share of answers in each
    (0-1): how far the stated probability of the answer is from how often such answers are right."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def calibration_summary(logp: np.ndarray, y: np.ndarray) -> dict:
    """NLL, expected calibration error (%), mean stated probability of the answer and accuracy (%) of
    log-probabilities ``logp`` (N, K) against the true class indices ``y``."""
    logp, y = np.asarray(logp, float), np.asarray(y)
    confidence, correct = np.exp(logp.max(axis=1)), logp.argmax(axis=1) == y
    return {"nll": round(float(-logp[np.arange(len(y)), y].mean()), 3),
            "ece": round(100 * expected_calibration_error(confidence, correct), 1),
            "confidence": round(100 * float(confidence.mean()), 1), "accuracy": round(100 * float(correct.mean()), 1)}
