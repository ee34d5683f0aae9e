"""`omniemo eval`: run a predictor over a dataset split, resumably, then score it both ways.

predictions.jsonl grows one line per finished item (flushed as it goes), so a killed run loses nothing and
a re-run skips what is done. A file that fails is recorded as an error row and counts as wrong.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omniemo.data.datasets import Item, get_dataset, load_items
from omniemo.eval.metrics import PROTOCOLS
from omniemo.eval.predictions import score_file
from omniemo.labels import get_labelset

PREDICTIONS = "predictions.jsonl"


@dataclass
class EvalConfig:
    dataset: str
    root: str
    out_dir: str
    split: str | None = None  # the dataset's default split when None
    model: str = "pipeline"
    labels: str | None = None  # the label set the model answers in; the dataset's own by default
    workers: int = 1
    limit: int | None = None
    dataset_options: dict = field(default_factory=dict)  # e.g. fold, modality, channel
    model_options: dict = field(default_factory=dict)  # e.g. fps, modalities, model_path
    batch_size: int = 1  # clips per model call, for predictors with predict_batch (the omni models)
    # pipeline only: the voice model is normalised per speaker with all of that speaker's clips in the evaluated
    # items (enrolment; transductive, as the speech model's "enrolled" figures)
    enroll_speakers: bool = False


class Predictors:
    """One predictor, or with enrolment one per speaker (each enrolled with that speaker's clips), made on demand."""

    def __init__(self, model: str, options: dict, speaker_clips: dict[str, list[str]] | None = None):
        self.model, self.options, self.speaker_clips = model, options, speaker_clips
        self._made: dict[str | None, object] = {}

    def for_item(self, item: Item):
        key = item.speaker if self.speaker_clips is not None else None
        if key not in self._made:
            from omniemo.predictor import get_predictor

            extra = {"enroll": self.speaker_clips[key]} if key is not None else {}
            self._made[key] = get_predictor(self.model, **self.options, **extra)
        return self._made[key]


def speaker_clips(items: list[Item]) -> dict[str, list[str]]:
    """Each speaker's clips, for enrolment; every item needs a speaker and every speaker two clips."""
    groups: dict[str, list[str]] = {}
    for item in items:
        if not item.speaker:
            raise ValueError(f"{item.path}: no speaker id, so no enrolment (the dataset adapter gives none)")
        groups.setdefault(item.speaker, []).append(item.path)
    alone = [s for s, paths in groups.items() if len(paths) < 2]
    if alone:
        raise ValueError(f"enrolment needs at least 2 clips per speaker; {len(alone)} speaker(s) have one: {alone[:5]}")
    return groups


def _predict_row(predictor, item: Item, labels: str) -> dict:
    start = time.perf_counter()
    base = {"id": item.id, "path": item.path, "label": item.label, "speaker": item.speaker}
    try:
        p = predictor.predict(item.path, labels)
    except Exception as exc:  # one bad file is an error row, never the end of the run
        return {**base, "error": f"{type(exc).__name__}: {exc}", "seconds": round(time.perf_counter() - start, 3)}
    row = {**base, "prediction": p.label, "output": p.output, "probabilities": p.probabilities,
           "missing_modalities": p.missing_modalities, "seconds": round(time.perf_counter() - start, 3)}
    if p.fusion is not None:  # each modality's own distribution over the label set: what `train fusion` fits on
        row["modalities"] = p.fusion.per_modality
    return row


def _predict_rows(predictor, items: list[Item], labels: str) -> list[dict]:
    """One model call for the batch; if it fails (one bad file), each item alone, so only that one errs."""
    if len(items) == 1:
        return [_predict_row(predictor, items[0], labels)]
    start = time.perf_counter()
    try:
        predictions = predictor.predict_batch([i.path for i in items], labels)
    except Exception:
        return [_predict_row(predictor, item, labels) for item in items]
    seconds = round((time.perf_counter() - start) / len(items), 3)
    return [{"id": i.id, "path": i.path, "label": i.label, "speaker": i.speaker, "prediction": p.label,
             "output": p.output, "probabilities": p.probabilities, "missing_modalities": p.missing_modalities,
             "seconds": seconds} for i, p in zip(items, predictions)]


_WORKER = {}


def _worker_init(predictors: Predictors) -> None:
    from omniemo.perception.models import quiet_native_stderr

    _WORKER["quiet"] = quiet_native_stderr()
    _WORKER["quiet"].__enter__()
    _WORKER["predictors"] = predictors


def _worker_predict(item: Item, labels: str) -> dict:
    return _predict_row(_WORKER["predictors"].for_item(item), item, labels)


def finished_ids(path: Path) -> set[str]:
    done = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by a kill: that item runs again
    return done


def run_eval(config: EvalConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    spec = get_dataset(config.dataset)
    items = load_items(config.dataset, config.root, config.split, **config.dataset_options)
    if config.limit:
        items = items[: config.limit]
    labels = config.labels or spec.labels
    get_labelset(labels)  # fail early on a bad label set
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PREDICTIONS
    _repair_tail(path)
    done = finished_ids(path)
    todo = [i for i in items if i.id not in done]
    if config.enroll_speakers and config.model != "pipeline":
        raise ValueError("enrolment (--enroll-speakers) is a cue-pipeline option; the omni models take none")
    predictors = Predictors(config.model, config.model_options, speaker_clips(items) if config.enroll_speakers else None)
    start = time.perf_counter()
    with path.open("a", encoding="utf-8") as handle:
        def write(row):
            handle.write(json.dumps(row) + "\n")
            handle.flush()

        if config.workers <= 1:
            batched = bool(todo) and hasattr(predictors.for_item(todo[0]), "predict_batch")
            step = max(1, config.batch_size) if batched else 1  # the omni models (never enrolled: one predictor)
            n = 0
            for first in range(0, len(todo), step):
                chunk = todo[first:first + step]
                for row in _predict_rows(predictors.for_item(chunk[0]), chunk, labels):
                    write(row)
                    n += 1
                    if progress:
                        progress(n, len(todo))
        else:
            with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_worker_init, initargs=(predictors,)) as pool:
                futures = [pool.submit(_worker_predict, item, labels) for item in todo]
                for n, future in enumerate(as_completed(futures), 1):
                    write(future.result())
                    if progress:
                        progress(n, len(todo))
    elapsed = time.perf_counter() - start
    summary = score_run(out, spec.labels)
    meta = {"dataset": config.dataset, "split": config.split or spec.default_split, "model": config.model,
            "labels": labels, "items": len(items), "ran_now": len(todo), "seconds_now": round(elapsed, 1),
            "items_per_minute": round(60 * len(todo) / elapsed, 1) if todo and elapsed > 0 else None,
            "in_distribution": config.dataset in _trained_on(config.model), "config": asdict(config)}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    return {**meta, "scores": summary}


def _trained_on(model: str) -> tuple[str, ...]:
    # datasets whose training data each predictor saw: scores on them are in distribution
    return {"pipeline": ("ravdess", "cremad")}.get(model, ())


def _repair_tail(path: Path) -> None:
    """Drop a last line cut short by a kill, so appending starts on a fresh line."""
    if path.exists() and path.stat().st_size:
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])


def score_run(out: Path, labels: str) -> dict:
    scores = {}
    for protocol in PROTOCOLS:
        s, preds = score_file(out / PREDICTIONS, labels, protocol=protocol)
        scores[protocol] = s.to_dict()
        scores["errors"] = preds.errors
        if preds.outputs:
            scores["format_rate"] = preds.format_ok / preds.outputs
            scores["strict_accuracy"] = preds.strict_hits / preds.outputs
        confusion_png(s, out / f"confusion-{protocol}.png")
    (out / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def confusion_png(scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.array(scores.confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    columns = scores.classes + ["(none)"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(columns), 1.0 + 0.55 * len(scores.classes)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(scores.classes)), scores.classes)
    for (r, c), v in np.ndenumerate(matrix):
        if v:
            ax.text(c, r, int(v), ha="center", va="center", fontsize=8, color="white" if share[r, c] > 0.5 else "black")
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title(f"{scores.labelset}, {scores.protocol}: WAR {100 * scores.war:.1f} UAR {100 * scores.uar:.1f}")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


# The R1-Omni paper's table (WAR / UAR %), shown as published reference rows, never as our results.
PAPER_ROWS = {
    "HumanOmni-0.5B": {"dfew": (22.64, 19.44), "mafw": (20.18, 13.52), "ravdess": (7.33, 9.38)},
    "EMER-SFT": {"dfew": (38.66, 35.31), "mafw": (38.39, 28.02), "ravdess": (29.00, 27.19)},
    "MAFW-DFEW-SFT": {"dfew": (60.23, 44.39), "mafw": (50.44, 30.39), "ravdess": (29.33, 30.75)},
    "R1-Omni": {"dfew": (65.83, 56.27), "mafw": (57.68, 40.04), "ravdess": (43.00, 44.69)},
}
PAPER_IN_DISTRIBUTION = {"dfew": True, "mafw": True, "ravdess": False}


def comparison_table(run_dirs: list[Path], protocol: str = "paper", paper_rows: bool = True) -> tuple[str, str]:
    """(Markdown, CSV) in the seed's layout: rows = models, columns = dataset WAR/UAR, ⬤ in / △ out of distribution."""
    runs = []
    for d in run_dirs:
        meta = json.loads((Path(d) / "run.json").read_text())
        scores = json.loads((Path(d) / "scores.json").read_text())[protocol]
        runs.append((meta, scores))
    datasets = []
    for meta, _ in runs:
        if meta["dataset"] not in datasets:
            datasets.append(meta["dataset"])
    if paper_rows:
        datasets += [d for d in PAPER_IN_DISTRIBUTION if d not in datasets]
    rows: dict[str, dict[str, tuple[float, float, bool]]] = {}
    for meta, s in runs:
        rows.setdefault(f"omniemo {meta['model']}", {})[meta["dataset"]] = (100 * s["war"], 100 * s["uar"], meta["in_distribution"])
    if paper_rows:
        for name, cells in PAPER_ROWS.items():
            rows[f"{name} (published, R1-Omni paper)"] = {d: (*v, PAPER_IN_DISTRIBUTION[d]) for d, v in cells.items()}
    header = ["Method"]
    for d in datasets:
        marks = {cells[d][2] for cells in rows.values() if d in cells}
        mark = " ⬤" if marks == {True} else " △" if marks == {False} else ""
        header += [f"{d.upper()} (WAR){mark}", f"{d.upper()} (UAR){mark}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    csv_lines = [",".join(h.replace(",", " ") for h in header)]
    for name, cells in rows.items():
        values = []
        for d in datasets:
            if d in cells:
                war, uar, inside = cells[d]
                mark = "" if len({c[d][2] for c in rows.values() if d in c}) == 1 else (" ⬤" if inside else " △")
                values += [f"{war:.2f}{mark}", f"{uar:.2f}{mark}"]
            else:
                values += ["-", "-"]
        lines.append("| " + " | ".join([name] + values) + " |")
        csv_lines.append(",".join([name] + [v.replace(" ⬤", "").replace(" △", "") for v in values]))
    note = (f"\nProtocol: {protocol}. ⬤ in distribution (the model trained on that dataset), △ out of distribution. "
            "Published rows are the R1-Omni paper's figures on its own unpublished subsets, for reference only.")
    return "\n".join(lines) + "\n" + note, "\n".join(csv_lines) + "\n"
