"""Reward functions for GRPO: plain functions ``f(completions, **columns) -> list[float]``.

``completions`` are the decoded model outputs; the columns come from the dataset rows (repeated for each of a
prompt's G samples): ``solution`` (the gold label as the dataset writes it), ``labels`` (a label-set name),
``evidence`` (the clip's measured cues as an ``omniemo.evidence/1`` dict, or None). Unknown columns are ignored,
so any function can be listed in a recipe's ``rewards``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from omniemo.answers import extract_answer, extract_think, format_ok, strict_match
from omniemo.labels import get_labelset, normalize_answer


def accuracy_strict(completions: list[str], solution: list[str], **_) -> list[float]:
    """R1-Omni's R_acc: the <answer> text (or the whole output), stripped, equals the label exactly."""
    return [1.0 if strict_match(c, s) else 0.0 for c, s in zip(completions, solution)]


def accuracy_normalized(completions: list[str], solution: list[str], labels: list[str] | str = "mafw",
                        **_) -> list[float]:
    """Accuracy after mapping the answer into the label set (case, synonyms: 'Happiness' -> happy)."""
    names = [labels] * len(completions) if isinstance(labels, str) else labels
    out = []
    for c, s, name in zip(completions, solution, names):
        ls = get_labelset(name)
        predicted, gold = normalize_answer(extract_answer(c), ls), normalize_answer(s, ls)
        out.append(1.0 if predicted is not None and predicted == gold else 0.0)
    return out


def format_reward(completions: list[str], **_) -> list[float]:
    """R1-Omni's R_format: the whole output is <think>...</think> then <answer>...</answer>."""
    return [1.0 if format_ok(c) else 0.0 for c in completions]


# -- grounding ----------------------------------------------------------------------------------------------------
# A claim in the reasoning is checkable when it names a cue we measure; each rule says which cue supports it.
_MODALITY_WORDS = {
    "face": r"\b(face|facial|smil\w*|frown\w*|brows?|eyebrows?|eyes?|mouth|lips?|jaw)\b",
    "voice": r"\b(voice|tone|pitch\w*|loud\w*|shout\w*|speaks?|speaking|vocal\w*|intonation)\b",
    "words": r"\b(says?|said|saying|words?|utter\w*|stat(?:es|ed)|subtitles?)\b",
}
_FACE_CLAIMS = {  # phrase -> (descriptor cue ids any of which, when active, supports it; or an expression)
    r"\bsmil\w*": (("face.lip_corner_pull",), "happy"),
    r"\b(frown\w*|furrow\w*|knit\w* brows?|brows? (?:drawn|knit)\w*)": (("face.brow_furrow",), None),
    r"\b(raised (?:eye)?brows?|(?:eye)?brows? (?:are |were )?raised)": (("face.brow_raise",), None),
    r"\b(wide(?:ned)? eyes|eyes (?:are |were )?wide\w*)": (("face.eye_openness",), None),
    r"\b(open mouth|mouth (?:is |was )?open\w*|jaw drop\w*)": (("face.mouth_opening", "face.jaw_drop"), None),
    r"\b(narrow\w* eyes|eyes (?:are |were )?(?:narrow\w*|closed))": (("face.eye_closure",), None),
    r"\b(corners? of (?:the |her |his )?mouth (?:turn\w* |pull\w* )?down\w*|downturned)": (("face.lip_corner_depression",), None),
}
_VOICE_CLAIMS = {
    r"\b(loud\w*|shout\w*|raised voice|yell\w*)": "voice.loud_stretches",
    r"\b(high[- ]pitch\w*|pitch (?:rises|rising|rose)|rising pitch)": "voice.pitch_peaks",
    r"\b(pause[sd]?|hesitat\w*)": "voice.pauses",
}
_QUOTE_RE = re.compile(r"[\"“']([^\"“”']{3,})[\"”']")


def _cue_map(evidence: dict) -> dict[str, dict]:
    return {c["id"]: c for c in evidence.get("cues", [])}


def _present(evidence: dict, modality: str) -> bool:
    report = evidence.get("modalities", {}).get(modality)
    return bool(report) and report.get("status") == "present"


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def grounding_checks(reasoning: str, evidence: dict) -> list[tuple[str, bool]]:
    """Each checkable claim of ``reasoning`` with whether the evidence supports it."""
    text = reasoning.lower()
    cues = _cue_map(evidence)
    checks: list[tuple[str, bool]] = []
    for modality, pattern in _MODALITY_WORDS.items():
        for m in re.finditer(pattern, text):
            checks.append((f"mentions {modality}: {m.group(0)!r}", _present(evidence, modality)))
            break  # one check per modality: saying "face" five times is one claim
    for pattern, (cue_ids, expression) in _FACE_CLAIMS.items():
        m = re.search(pattern, text)
        if m:
            active = any(cues.get(cid, {}).get("spans") for cid in cue_ids)
            expr = cues.get(f"face.expression.{expression}") if expression else None
            checks.append((f"face claim {m.group(0)!r}", active or bool(expr and expr["value"] >= 0.3)))
    for pattern, cue_id in _VOICE_CLAIMS.items():
        m = re.search(pattern, text)
        if m:
            cue = cues.get(cue_id)
            checks.append((f"voice claim {m.group(0)!r}", bool(cue) and bool(cue["value"])))
    transcript = _words(str(cues.get("words.transcript", {}).get("value", "")))
    for quote in _QUOTE_RE.findall(reasoning):
        checks.append((f"quote {quote!r}", bool(transcript) and _words(quote) in transcript))
    return checks


def grounding_reward(completions: list[str], evidence: list[dict | None] | None = None, **_) -> list[float]:
    """Share of the reasoning's checkable claims that the clip's measured cues support (0 when none are checkable).

    Without evidence for a row the reward is 0 for all its samples: a constant, so it moves no advantage.
    """
    rows = evidence if evidence is not None else [None] * len(completions)
    out = []
    for completion, ev in zip(completions, rows):
        think = extract_think(completion)
        if not ev or think is None:
            out.append(0.0)
            continue
        checks = grounding_checks(think, ev)
        out.append(sum(ok for _, ok in checks) / len(checks) if checks else 0.0)
    return out


REWARDS: dict[str, Callable[..., list[float]]] = {
    "accuracy": accuracy_strict,
    "accuracy_strict": accuracy_strict,
    "accuracy_normalized": accuracy_normalized,
    "format": format_reward,
    "grounding": grounding_reward,
}


def get_reward(name: str) -> Callable[..., list[float]]:
    """A reward by name, or ``module:function`` for one of your own."""
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name:
        import importlib

        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    raise ValueError(f"unknown reward {name!r}: use one of {sorted(REWARDS)} or module:function")
