"""Prediction files: one JSON object a line with ``label`` and ``prediction`` (a word) or ``output`` (raw text).

Lines that record a failed item (``"error": ...`` and no prediction) count as wrong, as any missing answer does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from omniemo.answers import extract_answer, format_ok, parse_label
from omniemo.eval.metrics import Scores, score
from omniemo.labels import LabelSet, get_labelset


class PredictionFileError(ValueError):
    def __init__(self, path: str | Path, line: int | None, cause: str):
        self.path, self.line, self.cause = str(path), line, cause
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {cause}")


@dataclass
class PredictionSet:
    labels: list[str] = field(default_factory=list)
    predictions: list[str | None] = field(default_factory=list)
    errors: int = 0
    outputs: int = 0  # lines given as raw model output
    format_ok: int = 0
    strict_hits: int = 0


def _ground_truth(value, labelset: LabelSet) -> str | None:
    text = str(value).strip()
    try:
        return labelset.from_code(text)
    except KeyError:
        return labelset.normalize(text)


def read_predictions(path: str | Path, labels: str | LabelSet) -> PredictionSet:
    labelset = get_labelset(labels)
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(path, None, "no such file")
    result = PredictionSet()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PredictionFileError(path, number, f"not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or "label" not in row:
                raise PredictionFileError(path, number, "each line needs a 'label' field")
            truth = _ground_truth(row["label"], labelset)
            if truth is None:
                raise PredictionFileError(path, number, f"label {row['label']!r} is not in the {labelset.name} vocabulary")
            if row.get("output") is not None:  # raw model text: the format and strict checks apply
                output = str(row["output"])
                result.outputs += 1
                result.format_ok += format_ok(output)
                result.strict_hits += extract_answer(output).strip() == truth
            if row.get("prediction") is not None:
                predicted = labelset.normalize(str(row["prediction"]))
            elif row.get("output") is not None:
                predicted = parse_label(str(row["output"]), labelset)
            elif "error" in row:
                predicted = None
                result.errors += 1
            else:
                raise PredictionFileError(path, number, "each line needs 'prediction', 'output' or 'error'")
            result.labels.append(truth)
            result.predictions.append(predicted)
    if not result.labels:
        raise PredictionFileError(path, None, "no predictions in the file")
    return result


def score_file(path: str | Path, labels: str | LabelSet, protocol: str = "paper", bootstrap: int = 1000) -> tuple[Scores, PredictionSet]:
    preds = read_predictions(path, labels)
    return score(preds.labels, preds.predictions, labels, protocol=protocol, bootstrap=bootstrap), preds
