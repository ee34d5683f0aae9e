"""Emotion label vocabularies of the standard datasets, and normalisation of free-text answers into them.

A *concept* is one emotion (``anxious``); a vocabulary names the concepts it scores with its own words
(MER2023 says ``worried`` for the concept that MAFW calls ``anxious``). Free text ("Anger.", "she is
scared") is mapped to a concept through a table of synonyms and inflections, then to the vocabulary's
word. Anything that maps to no label of the vocabulary, or to two different ones, is unparseable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Surface forms -> concept. Only unambiguous words: "upset" or "excited" could be several emotions.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "happiness", "happily", "joy", "joyful", "joyous", "glad", "cheerful", "delighted",
              "pleased", "content", "elated", "amused", "amusement"),
    "sad": ("sad", "sadness", "sadly", "sorrow", "sorrowful", "unhappy", "depressed", "grief", "grieving",
            "melancholy", "melancholic", "gloomy"),
    "neutral": ("neutral", "neutrality", "indifferent", "expressionless"),
    "calm": ("calm", "calmness", "calmly", "relaxed", "peaceful", "serene"),
    "angry": ("angry", "anger", "angrily", "mad", "furious", "fury", "rage", "irritated", "annoyed",
              "irate", "enraged"),
    "surprise": ("surprise", "surprised", "surprising", "astonished", "astonishment", "amazed", "amazement",
                 "shocked", "startled"),
    "disgust": ("disgust", "disgusted", "disgusting", "revulsion", "repulsed"),
    "fear": ("fear", "fearful", "fearfully", "scared", "afraid", "frightened", "terrified", "terror", "fright"),
    "contemptuous": ("contemptuous", "contempt", "scornful", "scorn", "disdain", "disdainful"),
    "disappointed": ("disappointed", "disappointment", "disappointing"),
    "helpless": ("helpless", "helplessness", "powerless"),
    "anxious": ("anxious", "anxiety", "anxiously", "worried", "worry", "worrying", "nervous", "nervousness",
                "apprehensive", "uneasy"),
    # EmoDB's boredom and IEMOCAP's frustration: no model here says them (each borrows from a near concept in
    # fusion), but a corpus that scores them can be read in its own labels
    "bored": ("bored", "boredom", "boring"),
    "frustrated": ("frustrated", "frustration", "frustrating"),
}
SURFACE_TO_CONCEPT: dict[str, str] = {w: c for c, words in _SYNONYMS.items() for w in words}

_NEGATIONS = frozenset({"not", "no", "never", "without", "isn't", "isnt", "aren't", "arent", "nor"})


@dataclass(frozen=True)
class LabelSet:
    """A dataset's emotion vocabulary.

    ``labels``: the words answers are scored in, in the dataset's order.
    ``codes``: official codes or names (as in the release files) -> label.
    ``concepts``: label -> concept, where the word differs from the concept's name.
    """

    name: str
    labels: tuple[str, ...]
    codes: dict[str, str] = field(default_factory=dict)
    concepts: dict[str, str] = field(default_factory=dict)

    def concept_of(self, label: str) -> str:
        return self.concepts.get(label, label)

    def label_for_concept(self, concept: str) -> str | None:
        for label in self.labels:
            if self.concept_of(label) == concept:
                return label
        return None

    def from_code(self, code: str | int) -> str:
        """An official code or name of the dataset (``'05'``, ``5``, ``'ANG'``, ``'anger'``) -> label."""
        key = str(code).strip()
        for candidate in (key, key.lower(), key.upper(), key.zfill(2)):
            if candidate in self.codes:
                return self.codes[candidate]
        if key.lower() in self.labels:
            return key.lower()
        raise KeyError(f"{key!r} is not a {self.name} emotion code (known: {', '.join(sorted(self.codes))})")

    def normalize(self, text: str | None) -> str | None:
        """Free text -> a label of this set, or None when it names none (or names two)."""
        return normalize_answer(text, self)


def normalize_answer(text: str | None, labelset: LabelSet) -> str | None:
    if text is None:
        return None
    cleaned = re.sub(r"[^a-z' ]+", " ", text.lower().replace("’", "'"))
    tokens = cleaned.split()
    if not tokens:
        return None
    found: list[str] = []
    for i, token in enumerate(tokens):
        concept = SURFACE_TO_CONCEPT.get(token) or SURFACE_TO_CONCEPT.get(token.strip("'"))
        if concept is None:
            continue
        if i > 0 and tokens[i - 1] in _NEGATIONS:
            continue
        label = labelset.label_for_concept(concept)
        if label is None:
            return None  # names an emotion outside this vocabulary: out of vocabulary, not a near miss
        if label not in found:
            found.append(label)
    return found[0] if len(found) == 1 else None


DFEW = LabelSet(
    "dfew",
    ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"),
    codes={str(i + 1): w for i, w in enumerate(("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"))},
)

MAFW = LabelSet(
    "mafw",
    ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
     "contemptuous", "anxious", "helpless", "disappointed"),
    codes={
        "anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy", "neutral": "neutral",
        "sadness": "sad", "surprise": "surprise", "contempt": "contemptuous", "anxiety": "anxious",
        "helplessness": "helpless", "disappointment": "disappointed",
    },
)

RAVDESS = LabelSet(
    "ravdess",
    ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"),
    codes={
        "01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
        "07": "disgust", "08": "surprise", "fearful": "fear", "surprised": "surprise",
    },
)

CREMAD = LabelSet(
    "cremad",
    ("angry", "disgust", "fear", "happy", "neutral", "sad"),
    # File-name codes and the one-letter votes of summaryTable.csv.
    codes={
        "ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad",
        "A": "angry", "D": "disgust", "F": "fear", "H": "happy", "N": "neutral", "S": "sad",
    },
)

MER2023 = LabelSet(
    "mer2023",
    ("neutral", "angry", "happy", "sad", "worried", "surprise"),
    codes={w: w for w in ("neutral", "angry", "happy", "sad", "worried", "surprise")},
    concepts={"worried": "anxious"},
)

ASED = LabelSet(
    "ased",
    ("neutral", "fear", "happy", "sad", "angry"),
    # the file name's emotion letter + folder number (n1 neutral, f2 fear, h3 happy, s4 sad, a5 angry)
    codes={"N1": "neutral", "F2": "fear", "H3": "happy", "S4": "sad", "A5": "angry"},
)

URDU = LabelSet(
    "urdu",
    ("angry", "happy", "neutral", "sad"),
    codes={"A": "angry", "H": "happy", "N": "neutral", "S": "sad"},
)

# Public corpora read in their release layouts (``omniemo.data.public``); nothing here trained on them.
_BASIC = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

EMODB = LabelSet(
    "emodb",
    ("angry", "bored", "disgust", "fear", "happy", "sad", "neutral"),
    # the German initial in the file name: Wut, Langeweile, Ekel, Angst, Freude, Trauer, Neutral
    codes={"W": "angry", "L": "bored", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"},
)

TESS = LabelSet("tess", _BASIC, codes={"ps": "surprise", "pleasant_surprise": "surprise", "pleasant_surprised": "surprise"})

SAVEE = LabelSet(
    "savee", _BASIC,
    codes={"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"},
)

EMOVO = LabelSet(
    "emovo", _BASIC,
    # Italian: disgusto, gioia, neutro, paura, rabbia, sorpresa, tristezza
    codes={"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear", "rab": "angry", "sor": "surprise",
           "tri": "sad"},
)

SHEMO = LabelSet(
    "shemo",
    ("angry", "fear", "happy", "neutral", "sad", "surprise"),
    codes={"A": "angry", "F": "fear", "H": "happy", "N": "neutral", "S": "sad", "W": "surprise"},
)

SUBESCO = LabelSet("subesco", _BASIC)

ENTERFACE = LabelSet(
    "enterface",
    ("angry", "disgust", "fear", "happy", "sad", "surprise"),
    codes={"an": "angry", "di": "disgust", "fe": "fear", "ha": "happy", "sa": "sad", "su": "surprise"},
)

JAFFE = LabelSet(
    "jaffe", _BASIC,
    codes={"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprise"},
)

KDEF = LabelSet(
    "kdef", _BASIC,
    codes={"AN": "angry", "DI": "disgust", "AF": "fear", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprise"},
)

CKPLUS = LabelSet(
    "ckplus",
    ("neutral", "angry", "contemptuous", "disgust", "fear", "happy", "sad", "surprise"),
    # the number in each sequence's Emotion/*_emotion.txt (0 is the sequence's first, neutral frame)
    codes={str(i): w for i, w in enumerate(("neutral", "angry", "contemptuous", "disgust", "fear", "happy", "sad",
                                            "surprise"))},
)

# The face sets the expression model trained on (``omniemo.data.face_sets``): their release codes.
FER2013 = LabelSet(
    "fer2013", _BASIC,
    codes={str(i): w for i, w in enumerate(("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))},
)

RAFDB = LabelSet(
    "rafdb", _BASIC,
    codes={str(i): w for i, w in enumerate(("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"), 1)},
)

LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (DFEW, MAFW, RAVDESS, CREMAD, MER2023, ASED, URDU, EMODB, TESS,
                                                          SAVEE, EMOVO, SHEMO, SUBESCO, ENTERFACE, JAFFE, KDEF, CKPLUS,
                                                          FER2013, RAFDB)}


def get_labelset(spec: str | LabelSet) -> LabelSet:
    """A known name (``LABEL_SETS``: dfew, mafw, ravdess, emodb, kdef ...) or a comma list of emotion words."""
    if isinstance(spec, LabelSet):
        return spec
    key = spec.strip().lower().replace("-", "")
    if key in LABEL_SETS:
        return LABEL_SETS[key]
    words = [w.strip() for w in spec.split(",") if w.strip()]
    if len(words) >= 2:
        concepts = {}
        for w in words:
            concept = SURFACE_TO_CONCEPT.get(w.lower())
            if concept is None:
                raise ValueError(f"custom label {w!r} is not an emotion word omniemo knows"
                                 f" (it knows {', '.join(sorted(_SYNONYMS))} and their synonyms)")
            twin = next((other for other, c in concepts.items() if c == concept), None)
            if twin is not None:  # two labels for one emotion would split its probability (or repeat a word)
                raise ValueError(f"custom labels {twin!r} and {w!r} name the same emotion ({concept}): give it once")
            concepts[w.lower()] = concept
        labels = tuple(concepts)
        return LabelSet("custom", labels, concepts={w: c for w, c in concepts.items() if w != c})
    raise ValueError(f"unknown label set {spec!r}: use one of {', '.join(LABEL_SETS)} or a comma list")
