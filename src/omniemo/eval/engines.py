"""Where a run's items are predicted: in this process, in a local process pool, or on Ray Data.

Every engine produces the same rows (``ROWS``: an eval row or a whole analysis) through the same predictor
code, and hands them to one writer in the driver as they finish: the caller appends each to its JSONL file,
so a killed driver or a lost worker loses no finished row and a re-run skips them. Ray is optional
(``pip install omniemo[ray]``): the local engines never import it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from omniemo.data.datasets import Item
from omniemo.workers import die_with_parent

ENGINES = ("local", "ray")


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


def eval_row(predictor, item: Item, labels: str) -> dict:
    """A labelled item's prediction (what `omniemo eval` scores), or its error."""
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
    notes = p.evidence.clip.get("notes") if p.evidence is not None else None
    if notes:  # e.g. a still image read whole because no face was detected in it
        row["notes"] = notes
    return row


def analysis_row(predictor, item: Item, labels: str) -> dict:
    """An unlabelled clip's whole analysis (the `analyze --json` result), or its error."""
    start = time.perf_counter()
    try:
        result = predictor.predict(item.path, labels).to_dict()
    except Exception as exc:
        return {"id": item.id, "path": item.path, "error": f"{type(exc).__name__}: {exc}",
                "seconds": round(time.perf_counter() - start, 3)}
    return {"id": item.id, **result, "seconds": round(time.perf_counter() - start, 3)}


ROWS: dict[str, Callable] = {"eval": eval_row, "analysis": analysis_row}


def batch_rows(predictor, items: list[Item], labels: str) -> list[dict]:
    """One model call for the batch (the omni models); if it fails (one bad file), each item alone."""
    if len(items) == 1:
        return [eval_row(predictor, items[0], labels)]
    start = time.perf_counter()
    try:
        predictions = predictor.predict_batch([i.path for i in items], labels)
    except Exception:
        return [eval_row(predictor, item, labels) for item in items]
    seconds = round((time.perf_counter() - start) / len(items), 3)
    return [{"id": i.id, "path": i.path, "label": i.label, "speaker": i.speaker, "prediction": p.label,
             "output": p.output, "probabilities": p.probabilities, "missing_modalities": p.missing_modalities,
             "seconds": seconds} for i, p in zip(items, predictions)]


# --- local ------------------------------------------------------------------------------------------------------

_WORKER = {}


def _worker_init(predictors: Predictors, kind: str, workers: int) -> None:
    from omniemo.perception.models import quiet_native_stderr, share_cores

    die_with_parent()
    share_cores(workers)
    _WORKER["quiet"] = quiet_native_stderr()
    _WORKER["quiet"].__enter__()
    _WORKER["predictors"], _WORKER["row"] = predictors, ROWS[kind]


def _worker_predict(item: Item, labels: str) -> dict:
    return _WORKER["row"](_WORKER["predictors"].for_item(item), item, labels)


def run_local(todo: list[Item], predictors: Predictors, labels: str, write: Callable[[dict], None], *, kind: str = "eval",
              workers: int = 1, batch_size: int = 1, progress: Callable[[int, int], None] | None = None) -> None:
    """This process (batched for predictors that take batches), or a pool of ``workers`` processes."""
    n = 0
    if workers <= 1:
        batched = kind == "eval" and bool(todo) and hasattr(predictors.for_item(todo[0]), "predict_batch")
        step = max(1, batch_size) if batched else 1  # the omni models (never enrolled: one predictor)
        for first in range(0, len(todo), step):
            chunk = todo[first:first + step]
            rows = (batch_rows(predictors.for_item(chunk[0]), chunk, labels) if batched
                    else [ROWS[kind](predictors.for_item(chunk[0]), chunk[0], labels)])
            for row in rows:
                write(row)
                n += 1
                if progress:
                    progress(n, len(todo))
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(predictors, kind, workers)) as pool:
        futures = [pool.submit(_worker_predict, item, labels) for item in todo]
        for n, future in enumerate(as_completed(futures), 1):
            write(future.result())
            if progress:
                progress(n, len(todo))


# --- Ray Data -------------------------------------------------------------------------------------------------

class PredictActor:
    """A Ray Data actor: loads the predictor once, then turns batches of items into rows (JSON strings)."""

    def __init__(self, predictors: Predictors, labels: str, kind: str, threads: int = 1):
        from omniemo.perception.models import THREADS_ENV, quiet_native_stderr

        os.environ[THREADS_ENV] = str(max(1, threads))  # the CPUs Ray gave this actor

        self.quiet = quiet_native_stderr()
        self.quiet.__enter__()
        self.predictors, self.labels, self.row = predictors, labels, ROWS[kind]

    def __call__(self, batch: dict) -> dict:
        rows = []
        for item_id, path, label, speaker in zip(batch["id"], batch["path"], batch["label"], batch["speaker"]):
            item = Item(str(item_id), str(path), str(label), speaker=str(speaker) if speaker else None)
            rows.append(json.dumps(self.row(self.predictors.for_item(item), item, self.labels)))
        return {"row": rows}


def start_ray(address: str | None = None, num_cpus: int | None = None):
    """``ray.init`` on this machine (``num_cpus``) or a running cluster (``address``): no dashboard, no usage
    statistics, quiet logs. Returns the ray module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ValueError("the ray engine needs Ray: pip install 'omniemo[ray]' (make setup installs it)") from None
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return ray


def run_ray(todo: list[Item], predictors: Predictors, labels: str, write: Callable[[dict], None], *, kind: str = "eval",
            workers: int = 1, address: str | None = None, num_cpus_per_worker: float = 1.0, num_gpus_per_worker: float = 0.0,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """The items as a Ray dataset, ``map_batches`` over a pool of ``workers`` PredictActor actors, rows written by
    this driver as they arrive. Returns timings (Ray's start-up apart from the run)."""
    if not todo:
        return {"ray_start_seconds": 0.0}
    start = time.perf_counter()
    ray = start_ray(address, None if address else max(1, int(round(workers * num_cpus_per_worker))))
    started = time.perf_counter()
    dataset = ray.data.from_items([{"id": i.id, "path": i.path, "label": i.label or "", "speaker": i.speaker or ""}
                                   for i in todo], override_num_blocks=len(todo))
    rows = dataset.map_batches(PredictActor, fn_constructor_args=(predictors, labels, kind, int(num_cpus_per_worker)),
                               batch_size=1,
                               compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=num_cpus_per_worker,
                               num_gpus=num_gpus_per_worker or None)
    for n, record in enumerate(rows.iter_rows(), 1):
        write(json.loads(record["row"]))
        if progress:
            progress(n, len(todo))
    return {"ray_start_seconds": round(started - start, 2), "ray_run_seconds": round(time.perf_counter() - started, 2)}


# --- a run into its results file -----------------------------------------------------------------------------------

def run_into(path: Path, items: list[Item], predictors: Predictors, labels: str, *, kind: str = "eval",
             engine: str = "local", workers: int = 1, batch_size: int = 1, ray_address: str | None = None,
             num_cpus_per_worker: float = 1.0, num_gpus_per_worker: float = 0.0, progress=None, transform=None) -> dict:
    """Predict the items not yet in ``path`` (JSONL, one row per item) and append their rows as they finish.

    One writer, one line at a time: a kill cuts at most the line being written, and the next run repairs it and
    skips what is done. ``transform`` may edit each row before it is written. Returns what ran and its timings."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    repair_tail(path)
    done = finished_ids(path)
    todo = [i for i in items if i.id not in done]
    start = time.perf_counter()
    counts = {"ran": len(todo), "errors": 0}
    with path.open("a", encoding="utf-8") as handle:
        def write(row):
            counts["errors"] += "error" in row
            handle.write(json.dumps(transform(row) if transform else row) + "\n")
            handle.flush()

        timings = {}
        if engine == "ray":
            timings = run_ray(todo, predictors, labels, write, kind=kind, workers=workers, address=ray_address,
                              num_cpus_per_worker=num_cpus_per_worker, num_gpus_per_worker=num_gpus_per_worker,
                              progress=progress)
        else:
            run_local(todo, predictors, labels, write, kind=kind, workers=workers, batch_size=batch_size, progress=progress)
    return {**counts, "seconds": time.perf_counter() - start, **timings}


# --- the results file ---------------------------------------------------------------------------------------------

def finished_ids(path: Path) -> set[str]:
    done = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by a kill: that item runs again
    return done


def repair_tail(path: Path) -> None:
    """Drop a last line cut short by a kill, so appending starts on a fresh line."""
    from omniemo import files

    if path.exists() and path.stat().st_size:
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            files.write_bytes(path, data[: data.rfind(b"\n") + 1])
