"""`omniemo batch`: an unlabelled corpus analysed, one JSONL row per clip."""

from __future__ import annotations

import json
from pathlib import Path

import click

from omniemo.cli.common import (
    AI_ACT_NOTE,
    FPS,
    POSITIVE,
    TerminalBar,
    fail,
    model_options,
    with_engine_options,
    with_model_options,
)


@click.command("batch", help=f"""Analyse many clips: one row per clip in OUT/results.jsonl (the `analyze --json`
result, or an error row naming the file), written as each finishes; a re-run skips finished clips.

CLIPS are files or folders (searched for media files); or give --manifest FILE (JSONL with path, optional id).
--engine ray runs on Ray Data, on this machine or a cluster (--ray-address).

{AI_ACT_NOTE}""")
@click.argument("clips", nargs=-1, type=click.Path(path_type=Path))
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSONL: path, optional id.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: results.jsonl and run.json.")
@click.option("--labels", default="dfew", show_default=True, help="Label set the answers are in.")
@click.option("--backend", type=click.Choice(["pipeline", "humanomni", "qwen-omni"]), default="pipeline", show_default=True)
@click.option("--fps", type=FPS, default=5.0, show_default=True, help="Pipeline: frames per second analysed.")
@click.option("--modalities", default=None, help="Pipeline: video, audio, text or modality names (default: all).")
@click.option("--workers", type=POSITIVE, default=1, show_default=True, help="Processes (local) or actors (ray).")
@click.option("--no-evidence", is_flag=True, help="Leave the evidence record out of each row (smaller files).")
@click.option("--adapt-corpus", is_flag=True,
              help="Pipeline: the files were recorded the same way (one corpus or session): read the voice against "
                   "their mean and the face with nets re-standardised on their faces.")
@with_engine_options
@with_model_options
def batch_command(clips, manifest, out_dir, labels, backend, fps, modalities, workers, no_evidence, adapt_corpus, engine,
                  ray_address, num_cpus_per_worker, num_gpus_per_worker, **model_kw) -> None:
    from omniemo.data.datasets import DatasetError
    from omniemo.eval.batch import BatchConfig, run_batch
    from omniemo.files import OutputError
    from omniemo.labels import get_labelset
    from omniemo.perception.models import quiet_native_stderr

    try:
        get_labelset(labels)
        if modalities:
            from omniemo.perception import parse_modalities

            parse_modalities(modalities)
    except ValueError as exc:
        fail(str(exc))
    options = {"fps": fps, **({"modalities": modalities} if modalities else {})} if backend == "pipeline" else {}
    options.update(model_options(backend, model_kw))
    config = BatchConfig(out_dir=str(out_dir), clips=[str(c) for c in clips], manifest=str(manifest) if manifest else None,
                         model=backend, labels=labels, model_options=options, engine=engine, workers=workers,
                         ray_address=ray_address, num_cpus_per_worker=num_cpus_per_worker,
                         num_gpus_per_worker=num_gpus_per_worker, with_evidence=not no_evidence,
                         adapt_corpus=adapt_corpus)
    try:
        with quiet_native_stderr() as stderr, TerminalBar(stderr, "batch") as bar:
            summary = run_batch(config, progress=bar)
    except (DatasetError, OutputError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "config"}))
