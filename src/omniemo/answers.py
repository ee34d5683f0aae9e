"""Reading model outputs: the <answer> text, the format check and the two ways of matching a label.

Reference semantics (R1-Omni / R1-V reward code):
- the answer is the text inside the first ``<answer>...</answer>`` (across lines), or the whole output
  when there is no such tag;
- strict match: ``answer.strip() == label.strip()``, nothing else (no case folding, no synonyms);
- format: ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", output, re.DOTALL)``.
"""

from __future__ import annotations

import re

from omniemo.labels import LabelSet, get_labelset, normalize_answer

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def extract_answer(output: str) -> str:
    """The text of the first <answer> tag, or the whole output when there is none (not stripped)."""
    match = ANSWER_RE.search(output)
    return match.group(1) if match else output


def extract_think(output: str) -> str | None:
    match = THINK_RE.search(output)
    return match.group(1) if match else None


def format_ok(output: str) -> bool:
    """The reference format reward: the whole output is <think>...</think> then <answer>...</answer>."""
    return FORMAT_RE.fullmatch(output) is not None


def strict_match(output: str, label: str) -> bool:
    """The reference accuracy reward: exact equality after strip, on the extracted answer."""
    return extract_answer(output).strip() == label.strip()


def parse_label(output: str, labels: str | LabelSet) -> str | None:
    """The label of ``labels`` that the output's answer names, or None when unparseable/out of vocabulary."""
    return normalize_answer(extract_answer(output), get_labelset(labels))


def normalized_match(output: str, label: str, labels: str | LabelSet) -> bool:
    """Match after mapping the answer into the vocabulary; an unparseable answer never matches."""
    labelset = get_labelset(labels)
    predicted = parse_label(output, labelset)
    return predicted is not None and predicted == normalize_answer(label, labelset)


def render_output(reasoning: str, label: str) -> str:
    """The reference output format, which ``format_ok`` accepts."""
    return f"<think>{reasoning}</think>\n<answer>{label}</answer>"
