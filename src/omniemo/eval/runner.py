"""`omniemo eval`: run a predictor over a dataset split, resumably, then score it both ways.

predictions.jsonl grows one line per finished item (flushed as it goes), so a killed run loses nothing and
a re-run skips what is done. A file that fails is recorded as an error row and counts as wrong.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from omniemo import files
from omniemo.data.datasets import DatasetError, Item, detect, get_dataset, load_items
from omniemo.eval.engines import Predictors, run_into
from omniemo.eval.metrics import PROTOCOLS
from omniemo.eval.predictions import score_file
from omniemo.files import check_writable
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
    # pipeline only: the voice model is centred on the mean of the evaluated clips (adaptation to a recording set;
    # transductive, as the speech model's "corpus" figures; unlabelled: no label is read)
    adapt_corpus: bool = False
    name: str | None = None  # the run's column in `eval table` (default: the dataset, or the manifest's name)
    engine: str = "local"  # local (this machine: one process or a pool of ``workers``) or ray (Ray Data)
    ray_address: str | None = None  # a running Ray cluster (default: start Ray on this machine)
    num_cpus_per_worker: float = 1.0  # ray: CPUs each predictor actor reserves
    num_gpus_per_worker: float = 0.0  # ray: GPUs each actor reserves (the omni backends)
    in_distribution: bool | None = None  # whether the model trained on this data (default: known datasets only)


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


def corpus_profiles(items: list[Item], modalities: str | None = None) -> dict:
    """The voice and face profiles of a whole run (adaptation; ``pipeline.adapt_to_set``), as predictor options,
    made once here: a clear error before any clip if too few clips have speech and too few files a face, and
    the workers share them instead of each reading the files again."""
    from omniemo.perception.pipeline import adapt_to_set

    voice, face = adapt_to_set([i.path for i in items], modalities)
    return {k: v for k, v in (("voice_profile", voice), ("face_profile", face)) if v is not None}


def _predictors(config: EvalConfig, items: list[Item]) -> Predictors:
    if (config.enroll_speakers or config.adapt_corpus) and config.model != "pipeline":
        raise ValueError("--enroll-speakers and --adapt-corpus are cue-pipeline options; the omni models take none")
    if config.enroll_speakers and config.adapt_corpus:
        raise ValueError("enrol each speaker or adapt to the whole run, not both")
    if config.adapt_corpus:
        return Predictors(config.model, {**config.model_options,
                                         **corpus_profiles(items, config.model_options.get("modalities"))})
    return Predictors(config.model, config.model_options, speaker_clips(items) if config.enroll_speakers else None)


def run_eval(config: EvalConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    spec = get_dataset(config.dataset)
    labels = config.labels or spec.labels
    get_labelset(labels)  # fail early on a bad label set
    options = dict(config.dataset_options)
    if spec.labels_from_run:  # a manifest's labels are words of the run's label set (mer2023's "worried")
        options["labels"] = labels
    items = load_items(config.dataset, config.root, config.split, **options)
    if not items:
        raise DatasetError(empty_split_message(config, options))
    if config.limit:
        items = items[: config.limit]
    score_labels = labels if spec.labels_from_run else spec.labels
    out = Path(config.out_dir)
    check_writable(out, directory=True)
    out.mkdir(parents=True, exist_ok=True)
    predictors = _predictors(config, items)
    ran = run_into(out / PREDICTIONS, items, predictors, labels, engine=config.engine, workers=config.workers,
                   batch_size=config.batch_size, ray_address=config.ray_address,
                   num_cpus_per_worker=config.num_cpus_per_worker, num_gpus_per_worker=config.num_gpus_per_worker,
                   progress=progress)
    elapsed = ran.pop("seconds")
    ran_now = ran.pop("ran")
    ran.pop("errors")
    summary = score_run(out, score_labels)
    in_distribution = config.in_distribution
    if in_distribution is None and spec.name in _trained_on(config.model):
        in_distribution = True
    elif in_distribution is None and not spec.labels_from_run:
        in_distribution = False  # a named dataset the model never saw; a manifest's data is unknown
    meta = {"dataset": config.dataset, "name": config.name or run_name(config), "split": config.split or spec.default_split,
            "model": config.model, "labels": labels, "items": len(items), "ran_now": ran_now,
            "seconds_now": round(elapsed, 1),
            "items_per_minute": round(60 * ran_now / elapsed, 1) if ran_now and elapsed > 0 else None,
            "in_distribution": in_distribution, "engine": config.engine, **ran, "config": asdict(config)}
    files.write_text(out / "run.json", json.dumps(meta, indent=2) + "\n")
    return {**meta, "scores": summary}


@dataclass
class SuiteRun:
    dataset: str
    root: str
    out_dir: str
    summary: dict | None = None  # run_eval's summary when it ran
    error: str | None = None  # why it did not


def run_suite(root: str | Path, out_dir: str | Path, template: EvalConfig,
              progress: Callable[[str], Callable[[int, int], None] | None] | None = None) -> list[SuiteRun]:
    """Every named dataset found under ``root`` (``data.datasets.detect``), each run as ``template`` says into
    ``out_dir/<its folder>``, its default split unless the template names one. A dataset that cannot run is
    reported and the others go on."""
    found = detect(root)
    names = Counter(name for name, _, _ in found)
    runs = []
    for name, folder, _ in found:
        config = replace(template, dataset=name, root=str(folder), out_dir=str(Path(out_dir) / folder.name),
                         name=name if names[name] == 1 else f"{name}-{folder.name}", dataset_options={})
        run = SuiteRun(name, str(folder), config.out_dir)
        try:
            run.summary = run_eval(config, progress=progress(name) if progress else None)
        except (DatasetError, ValueError, RuntimeError) as exc:
            run.error = str(exc)
        runs.append(run)
    return runs


def _trained_on(model: str) -> tuple[str, ...]:
    # datasets whose training data each predictor saw: scores on them are in distribution
    return {"pipeline": ("ravdess", "cremad", "ased", "urdu", "fer2013", "rafdb")}.get(model, ())


def run_name(config: EvalConfig) -> str:
    """A run's column name: the dataset, or for a manifest its file (or folder) name."""
    if get_dataset(config.dataset).labels_from_run:
        root = Path(config.root)
        return root.stem if root.is_file() else root.name
    return config.dataset


def empty_split_message(config: EvalConfig, options: dict) -> str:
    """No item in the asked split: say so, and which splits do hold items."""
    spec = get_dataset(config.dataset)
    split = config.split or spec.default_split
    try:
        everything = load_items(config.dataset, config.root, "all", **options)
    except (DatasetError, ValueError):
        everything = []
    if not everything:
        return f"{config.root}: no {config.dataset} items found (an empty folder or manifest?)"
    counts = Counter(i.split or "all" for i in everything)
    held = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
    return f"{config.root}: the {split} split of {config.dataset} holds no items; splits here: {held} (use --split)"


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
    files.write_text(out / "scores.json", json.dumps(scores, indent=2) + "\n")
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
    with files.atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=100, bbox_inches="tight")
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
    """(Markdown, CSV) in the seed's layout: rows = models, columns = datasets (a manifest run: its own name)
    WAR/UAR, ⬤ in / △ out of distribution, ? where the run does not say."""
    runs = []
    for d in run_dirs:
        meta = json.loads((Path(d) / "run.json").read_text())
        scores = json.loads((Path(d) / "scores.json").read_text())[protocol]
        runs.append((meta.get("name") or meta["dataset"], meta, scores))
    columns: list[str] = []
    for column, _, _ in runs:
        if column not in columns:
            columns.append(column)
    if paper_rows:
        columns += [d for d in PAPER_IN_DISTRIBUTION if d not in columns]
    rows: dict[str, dict[str, tuple[float, float, bool | None]]] = {}
    for column, meta, s in runs:
        row = rows.setdefault(f"omniemo {meta['model']}", {})
        if column in row:
            raise ValueError(f"two runs of {meta['model']} on {column!r}: name one with `omniemo eval --name`")
        row[column] = (100 * s["war"], 100 * s["uar"], meta.get("in_distribution"))
    if paper_rows:
        for name, cells in PAPER_ROWS.items():
            rows[f"{name} (published, R1-Omni paper)"] = {d: (*v, PAPER_IN_DISTRIBUTION[d]) for d, v in cells.items()}

    def mark(flag):
        return " ⬤" if flag is True else " △" if flag is False else " ?"

    header = ["Method"]
    for d in columns:
        marks = {cells[d][2] for cells in rows.values() if d in cells}
        shared = mark(next(iter(marks))) if len(marks) == 1 else ""
        header += [f"{d.upper()} (WAR){shared}", f"{d.upper()} (UAR){shared}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    csv_lines = [",".join(h.replace(",", " ") for h in header)]
    for name, cells in rows.items():
        values = []
        for d in columns:
            if d in cells:
                war, uar, inside = cells[d]
                own = "" if len({c[d][2] for c in rows.values() if d in c}) == 1 else mark(inside)
                values += [f"{war:.2f}{own}", f"{uar:.2f}{own}"]
            else:
                values += ["-", "-"]
        lines.append("| " + " | ".join([name] + values) + " |")
        csv_lines.append(",".join([name] + [v.replace(" ⬤", "").replace(" △", "").replace(" ?", "") for v in values]))
    note = (f"\nProtocol: {protocol}. ⬤ in distribution (the model trained on that dataset), △ out of distribution, "
            "? not stated by the run (`omniemo eval --in-distribution/--out-of-distribution`). Published rows are the "
            "R1-Omni paper's figures on its own unpublished subsets, for reference only.")
    return "\n".join(lines) + "\n" + note, "\n".join(csv_lines) + "\n"
