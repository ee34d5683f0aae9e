"""`omniemo batch`: analyse an unlabelled corpus, one JSONL row per clip (the `analyze --json` result, or an error
row), resumably, on this machine or on Ray. The same engines as `omniemo eval`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omniemo import files
from omniemo.data.datasets import MEDIA_SUFFIXES, DatasetError, Item
from omniemo.eval.engines import Predictors, run_into
from omniemo.eval.runner import corpus_profiles
from omniemo.files import check_writable

RESULTS = "results.jsonl"


@dataclass
class BatchConfig:
    out_dir: str
    clips: list[str] = field(default_factory=list)  # files, or folders searched for media files
    manifest: str | None = None  # a JSONL file of {"path", optional "id"} (relative paths: to the manifest)
    model: str = "pipeline"
    labels: str = "dfew"
    model_options: dict = field(default_factory=dict)
    engine: str = "local"
    workers: int = 1
    ray_address: str | None = None
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    with_evidence: bool = True
    adapt_corpus: bool = False  # pipeline: the voice and the face read against these files' mean (one recording set)


def batch_items(config: BatchConfig) -> list[Item]:
    items: list[Item] = []
    if config.manifest:
        manifest = Path(config.manifest)
        if not manifest.is_file():
            raise DatasetError(f"{manifest}: manifest not found")
        for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                path = Path(row["path"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(f"{manifest}:{number}: needs JSON with 'path' ({exc})") from exc
            path = path if path.is_absolute() else manifest.parent / path
            items.append(Item(str(row.get("id", path)), str(path), ""))
    for clip in map(Path, config.clips):
        if clip.is_dir():
            items += [Item(str(p), str(p), "") for p in sorted(clip.rglob("*"))
                      if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES]
        else:
            items.append(Item(str(clip), str(clip), ""))  # a missing or bad file becomes an error row
    if not items:
        raise DatasetError("nothing to analyse: give clips, folders of clips, or --manifest")
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise DatasetError("two clips share an id: give each manifest row its own 'id'")
    return items


def run_batch(config: BatchConfig, progress=None) -> dict:
    items = batch_items(config)
    out = Path(config.out_dir)
    check_writable(out, directory=True)
    out.mkdir(parents=True, exist_ok=True)

    def without_evidence(row):
        row.pop("evidence", None)
        return row

    if config.adapt_corpus and config.model != "pipeline":
        raise ValueError("--adapt-corpus is a cue-pipeline option; the omni models take none")
    options = dict(config.model_options)
    if config.adapt_corpus:
        options.update(corpus_profiles(items, options.get("modalities")))
    ran = run_into(out / RESULTS, items, Predictors(config.model, options), config.labels, kind="analysis",
                   engine=config.engine, workers=config.workers, ray_address=config.ray_address,
                   num_cpus_per_worker=config.num_cpus_per_worker, num_gpus_per_worker=config.num_gpus_per_worker,
                   progress=progress, transform=None if config.with_evidence else without_evidence)
    elapsed = ran.pop("seconds")
    meta = {"items": len(items), "ran_now": ran.pop("ran"), "errors_now": ran.pop("errors"), "seconds_now": round(elapsed, 1),
            "engine": config.engine, **ran, "results": str(out / RESULTS), "config": asdict(config)}
    meta["items_per_minute"] = round(60 * meta["ran_now"] / elapsed, 1) if meta["ran_now"] and elapsed > 0 else None
    files.write_text(out / "run.json", json.dumps(meta, indent=2) + "\n")
    return meta
