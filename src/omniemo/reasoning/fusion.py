"""Fusion: face, voice and text emotion evidence into one probability over a chosen label set.

Each modality gives a distribution over its own classes (face: 7 FER2013 expressions; voice: 8 RAVDESS
emotions; text: NRC lexicon emotion words and VADER sentiment). Each is mapped into the target label set by
emotion concept, then combined log-linearly:

    log p(label) = sum_m weight_m * log p_m(label) + const

A label a modality cannot express (the face has no "calm") takes a discounted share of its nearest concept
(calm <- neutral) or, failing that, the modality's average, so that modality neither votes for nor against
it. Before pooling, each modality's distribution is mixed with a uniform floor, ``(1 - f_m) p_m + f_m / K``, so
that no modality's near-zero probability can veto a label the others support (a face model that never says
disgust must not overrule a voice that does). The weights and floors ship in ``weights/fusion_weights.json``,
fitted by ``omniemo train fusion`` (maximum a posteriori, Gaussian priors around ``PRIOR_WEIGHTS`` and
``PRIOR_FLOORS``; floors at least ``MIN_FLOOR``) on `omniemo eval` runs of labelled clips; the file keeps which
runs, which modalities were fitted and the scores before and after. Contributions are leave-one-out:
the change in the answer's probability when a modality is dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from omniemo.labels import LabelSet, get_labelset

# where the fit starts, and what a modality keeps when no data could fit it: the voice is temperature-
# calibrated on its dev speakers; lexicon counts are weaker evidence than a trained model
PRIOR_WEIGHTS = {"face": 1.0, "voice": 1.0, "text": 0.5}
# A floor f caps what one modality's near-zero can cost a label at about w log(1/f): with the face's 0.2 that is
# 1.6, less than a voice at 0.7 vs 0.1 gives (2.3 at weight 1.2), so a face that never says disgust cannot
# overrule such a voice. The face has no labelled video clips here to fit it; the voice's is fitted on 1,144.
PRIOR_FLOORS = {"face": 0.2, "voice": 0.05, "text": 0.05}
MIN_FLOOR = 0.02  # a fitted floor never goes below this: no probability is ever 0
WEIGHTS_FILE = "fusion_weights.json"
# concept a missing concept borrows from, at half strength
FALLBACK = {"calm": "neutral", "anxious": "fear", "contemptuous": "disgust", "disappointed": "sad", "helpless": "sad",
            "bored": "neutral", "frustrated": "angry"}
FALLBACK_DISCOUNT = 0.5
FLOOR = 1e-4  # no modality may veto a label outright
NRC_TO_CONCEPT = {"anger": "angry", "fear": "fear", "joy": "happy", "sadness": "sad", "disgust": "disgust",
                  "surprise": "surprise"}
FACE_CONCEPTS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "sad": "sad",
                 "surprise": "surprise", "neutral": "neutral"}


@lru_cache(maxsize=1)
def shipped_weights() -> dict[str, float]:
    """The fitted weights that ship with the package (``omniemo train fusion`` wrote them)."""
    source = resources.files("omniemo.reasoning").joinpath("weights", WEIGHTS_FILE)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: reinstall omniemo, or fit it with `omniemo train fusion`")
    return {**PRIOR_WEIGHTS, **json.loads(source.read_text())["weights"]}


@lru_cache(maxsize=1)
def shipped_floors() -> dict[str, float]:
    source = resources.files("omniemo.reasoning").joinpath("weights", WEIGHTS_FILE)
    return {**PRIOR_FLOORS, **json.loads(source.read_text()).get("floors", {})} if source.is_file() else dict(PRIOR_FLOORS)


def with_floor(dist: np.ndarray, floor: float) -> np.ndarray:
    """A distribution mixed with the uniform: no label below floor / K."""
    return (1.0 - floor) * dist + floor / len(dist)


@dataclass
class Fusion:
    labels: tuple[str, ...]
    probabilities: dict[str, float]
    per_modality: dict[str, dict[str, float]]  # each modality's distribution over the label set
    contributions: dict[str, float] = field(default_factory=dict)  # leave-one-out change of the answer's probability
    weights: dict[str, float] = field(default_factory=dict)
    floors: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)


def to_label_set(concept_probs: dict[str, float], labelset: LabelSet) -> np.ndarray:
    """A modality's probabilities by concept -> a distribution over the label set's labels."""
    covered = np.array([concept_probs.get(labelset.concept_of(lab), np.nan) for lab in labelset.labels], dtype=float)
    known = np.isfinite(covered)
    if not known.any():
        return np.full(len(covered), 1.0 / len(covered))
    average = float(np.nanmean(covered))
    for i, lab in enumerate(labelset.labels):
        if known[i]:
            continue
        fallback = FALLBACK.get(labelset.concept_of(lab))
        covered[i] = FALLBACK_DISCOUNT * concept_probs[fallback] if fallback in concept_probs else average
    covered = np.maximum(covered, FLOOR)
    return covered / covered.sum()


def text_concepts(emotion_word_counts: dict[str, int], compound: float) -> dict[str, float]:
    """A soft distribution from lexicon hits: each emotion word adds weight; no hits and a mild tone favour neutral."""
    scores = {c: 1.0 for c in set(NRC_TO_CONCEPT.values()) | {"neutral"}}
    for affect, count in emotion_word_counts.items():
        concept = NRC_TO_CONCEPT.get(affect)
        if concept:
            scores[concept] += 1.5 * count
    if compound > 0.3:
        scores["happy"] += 2 * compound
    elif compound < -0.3:
        for c in ("angry", "sad", "fear", "disgust"):
            scores[c] += 0.5 * -compound
    if not emotion_word_counts and abs(compound) < 0.3:
        scores["neutral"] += 0.3  # words without emotion words are weak evidence of a neutral state
    total = sum(scores.values())
    return {c: v / total for c, v in scores.items()}


def fuse(modalities: dict[str, dict[str, float]], labels: str | LabelSet, weights: dict[str, float] | None = None,
         floors: dict[str, float] | None = None) -> Fusion:
    """Combine per-modality concept probabilities (any subset of face/voice/text) over a label set."""
    labelset = get_labelset(labels)
    weights = {**shipped_weights(), **(weights or {})}
    floors = {**shipped_floors(), **(floors or {})}
    dists = {m: to_label_set(p, labelset) for m, p in modalities.items() if p}
    pooled = {m: with_floor(d, floors[m]) for m, d in dists.items()}

    def combine(names):
        if not names:
            return np.full(len(labelset.labels), 1.0 / len(labelset.labels))
        logp = sum(weights[m] * np.log(pooled[m]) for m in names)
        logp -= logp.max()
        p = np.exp(logp)
        return p / p.sum()

    fused = combine(list(dists))
    top = int(np.argmax(fused))
    contributions = {}
    for m in dists:
        without = combine([n for n in dists if n != m])
        contributions[m] = round(float(fused[top] - without[top]), 4)
    return Fusion(
        labels=labelset.labels,
        probabilities={lab: round(float(p), 4) for lab, p in zip(labelset.labels, fused)},
        per_modality={m: {lab: round(float(p), 4) for lab, p in zip(labelset.labels, d)} for m, d in dists.items()},
        contributions=contributions,
        weights={m: weights[m] for m in dists},
        floors={m: floors[m] for m in dists},
    )
