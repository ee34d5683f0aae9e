"""`omniemo score`, `omniemo eval` (and `eval table`), `omniemo datasets`: benchmarks on the standard datasets."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from omniemo import files
from omniemo.cli.common import (
    EXIT_BAD_INPUT,
    POSITIVE,
    TerminalBar,
    dataset_options,
    fail,
    model_options,
    with_dataset_options,
    with_engine_options,
    with_model_options,
)
from omniemo.eval.metrics import PROTOCOLS, UNPARSEABLE, Scores
from omniemo.eval.predictions import PredictionFileError, score_file
from omniemo.labels import LABEL_SETS


def _format_scores(scores: Scores) -> str:
    lines = [
        f"protocol {scores.protocol}, labels {scores.labelset}, {scores.n} items, {scores.unparseable} unparseable",
        f"WAR {100 * scores.war:6.2f} %" + (f"  (95% CI {100 * scores.war_ci[0]:.2f}-{100 * scores.war_ci[1]:.2f})" if scores.war_ci else ""),
        f"UAR {100 * scores.uar:6.2f} %" + (f"  (95% CI {100 * scores.uar_ci[0]:.2f}-{100 * scores.uar_ci[1]:.2f})" if scores.uar_ci else ""),
        "",
        "recall per class:",
    ]
    for cls in scores.classes:
        recall = scores.recall.get(cls)
        value = f"{100 * recall:6.2f} %" if recall is not None else "   n/a  "
        lines.append(f"  {cls:<14}{value}  (n={scores.support[cls]})")
    columns = scores.classes + [UNPARSEABLE]
    width = max(7, max(len(c) for c in columns) + 1)
    lines += ["", "confusion (rows: truth, columns: prediction):", " " * 14 + "".join(f"{c[:width - 1]:>{width}}" for c in columns)]
    for cls, row in zip(scores.classes, scores.confusion):
        lines.append(f"  {cls:<12}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


@click.command("score")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--labels", "labels", required=True, type=click.Choice(sorted(LABEL_SETS)), help="Label vocabulary.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="paper", show_default=True,
              help="paper: the R1-Omni scripts' rules; corrected: RAVDESS calm scored as neutral.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True, help="Bootstrap rounds for the 95% intervals (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def score_command(predictions: Path, labels: str, protocol: str, bootstrap: int, as_json: bool) -> None:
    """Score a predictions file: one JSON object a line with `label` and `prediction` or `output`.

    `output` is raw model text (the <answer> tag is parsed); `prediction` is an emotion word. Prints WAR,
    UAR with bootstrap 95% intervals, per-class recall and the confusion matrix.
    """
    try:
        scores, preds = score_file(predictions, labels, protocol=protocol, bootstrap=bootstrap)
    except PredictionFileError as exc:
        fail(str(exc))
    extra = {"errors": preds.errors}
    if preds.outputs:
        extra.update(format_rate=preds.format_ok / preds.outputs, strict_accuracy=preds.strict_hits / preds.outputs)
    if as_json:
        click.echo(json.dumps({**scores.to_dict(), **extra}, indent=2))
        return
    click.echo(_format_scores(scores))
    if preds.errors:
        click.echo(f"\n{preds.errors} items failed to run and count as wrong")
    if preds.outputs:
        click.echo(f"\nraw outputs: format check passed {100 * extra['format_rate']:.1f} %, "
                   f"strict (reference) accuracy {100 * extra['strict_accuracy']:.2f} %")



@click.group("datasets")
def datasets_group() -> None:
    """Dataset adapters: dfew, mafw, ravdess, cremad, ased, urdu, mer2023, images, clips (a folder of your own),
    manifest (JSONL), r1omni (training JSON), the face sets fer2013 and rafdb (test splits: the face model trained on
    their train splits), and public corpora no model here trained on: emodb, tess, savee, emovo, shemo, subesco,
    enterface, jaffe, kdef, ckplus."""


@datasets_group.command("check")
@click.argument("name")
@click.argument("root", type=click.Path(path_type=Path))
@with_dataset_options
@click.option("--labels", default=None,
              help="images, clips, manifest: the label set their labels are read in (default dfew), as for eval.")
@click.option("--json", "as_json", is_flag=True)
def datasets_check(name, root, split, fold, modality, channel, perceived, labels, as_json) -> None:
    """List a dataset split as the adapter reads it: items, label counts, speakers, missing files."""
    from dataclasses import asdict

    from omniemo.data.datasets import DatasetError, check, get_dataset

    try:
        options = dataset_options(fold, modality, channel, perceived)
        if labels:
            if not get_dataset(name).labels_from_run:
                fail(f"--labels: {name} reads its own label set; it applies to images, clips and manifest")
            options["labels"] = labels
        report = check(name, root, split, **options)
    except DatasetError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    else:
        click.echo(f"{report.dataset} at {report.root}, split {report.split}: {report.items} items, {report.speakers} speakers")
        for label, count in sorted(report.label_counts.items()):
            click.echo(f"  {label:<14}{count}")
        for path in report.missing[:20]:
            click.echo(f"missing: {path}")
        for path in report.unreadable[:20]:
            click.echo(f"empty: {path}")
        if len(report.missing) > 20:
            click.echo(f"... {len(report.missing)} missing in all")
    if not report.ok:
        sys.exit(EXIT_BAD_INPUT)


@datasets_group.command("detect")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def datasets_detect(root, as_json) -> None:
    """The datasets `omniemo eval suite ROOT` would run: each folder below ROOT an adapter reads, and how many items."""
    from omniemo.data.datasets import DatasetError, detect

    try:
        found = detect(root)
    except DatasetError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([{"dataset": name, "root": str(folder), "items": n} for name, folder, n in found], indent=2))
        return
    for name, folder, n in found:
        click.echo(f"{name:<10} {n:>7} items  {folder}")


@datasets_group.command("toy")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train", "n_train", type=click.IntRange(min=1), default=48, show_default=True)
@click.option("--test", "n_test", type=click.IntRange(min=0), default=24, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def datasets_toy(out_dir, n_train, n_test, seed) -> None:
    """Write the toy task (1 s clips whose colour and tone give the label) and its manifest, for tiny training runs."""
    from omniemo.train.toy import write_toy_dataset

    click.echo(f"wrote {write_toy_dataset(out_dir, n_train, n_test, seed)}")


@click.group("eval", invoke_without_command=True)
@click.option("--dataset", help="dfew, mafw, ravdess, cremad, ased, urdu, mer2023, images, clips, manifest, r1omni, fer2013,"
                                 " rafdb, or a public corpus: emodb, tess, savee, emovo, shemo, subesco, enterface, jaffe,"
                                 " kdef, ckplus.")
@click.option("--root", type=click.Path(path_type=Path), help="The dataset's folder (or manifest file).")
@with_dataset_options
@click.option("--model", type=click.Choice(["pipeline", "humanomni", "qwen-omni"]), default="pipeline", show_default=True,
              help="Predictor backend (omni models take --model-path).")
@click.option("--batch-size", type=POSITIVE, default=1, show_default=True, help="Omni models: clips per model call.")
@with_model_options
@click.option("--labels", default=None, help="Label set the model answers in (default: the dataset's).")
@click.option("--workers", type=POSITIVE, default=1, show_default=True, help="Processes (each loads its own models).")
@click.option("--limit", type=POSITIVE, default=None, help="Only the first N items (a quick look).")
@click.option("--modalities", default=None, help="Limit the pipeline to: video, audio, text or modality names.")
@click.option("--enroll-speakers", is_flag=True,
              help="Pipeline: normalise the voice per speaker with all of that speaker's clips in the run (enrolment; transductive).")
@click.option("--adapt-corpus", is_flag=True,
              help="Pipeline: adapt to the run's files as one recording set (the voice read against their mean, the "
                   "face with nets re-standardised on their faces; transductive, no labels read).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder: predictions.jsonl, scores.json, run.json, PNGs.")
@click.option("--name", default=None, help="The run's column in `eval table` (default: the dataset, or the manifest's file name).")
@click.option("--in-distribution/--out-of-distribution", "in_distribution", default=None,
              help="Whether the model trained on this data (known for the named datasets; say it for a manifest).")
@with_engine_options
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
def eval_group(ctx, dataset, root, split, fold, modality, channel, perceived, model, batch_size, labels, workers,
               limit, modalities, enroll_speakers, adapt_corpus, out_dir, name, in_distribution, engine, ray_address,
               num_cpus_per_worker, num_gpus_per_worker, as_json, **model_kw) -> None:
    """Score a model on a dataset split: `omniemo eval --dataset NAME --root DIR --out DIR`.

    Resumable: predictions.jsonl grows as items finish, a re-run skips them, a failing file becomes an error
    row. --engine ray runs the same predictor on Ray Data (this machine, or a cluster with --ray-address). Scores both protocols (paper, corrected) with bootstrap intervals. `omniemo eval table RUN...`
    prints the comparison table; `omniemo eval suite ROOT` runs every dataset found under ROOT.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not (dataset and root and out_dir):
        fail("eval needs --dataset, --root and --out (or a subcommand: table, suite)")
    from omniemo.data.datasets import DatasetError
    from omniemo.eval.runner import EvalConfig, run_eval

    config = EvalConfig(dataset=dataset, root=str(root), out_dir=str(out_dir), split=split, model=model, labels=labels,
                        workers=workers, limit=limit, dataset_options=dataset_options(fold, modality, channel, perceived),
                        model_options={**({"modalities": modalities} if modalities else {}),
                                       **model_options(model, model_kw)}, batch_size=batch_size,
                        enroll_speakers=enroll_speakers, adapt_corpus=adapt_corpus, name=name,
                        in_distribution=in_distribution, engine=engine, ray_address=ray_address,
                        num_cpus_per_worker=num_cpus_per_worker,
                        num_gpus_per_worker=num_gpus_per_worker)
    from omniemo.perception.models import quiet_native_stderr

    try:
        with quiet_native_stderr() as stderr, TerminalBar(stderr, f"{dataset} {split or ''}".strip()) as bar:
            summary = run_eval(config, progress=bar)
    except (DatasetError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    paper, corrected = summary["scores"]["paper"], summary["scores"]["corrected"]
    click.echo(f"{dataset} {summary['split']}: {paper['n']} items ({summary['scores']['errors']} errors) | paper WAR "
               f"{100 * paper['war']:.2f} UAR {100 * paper['uar']:.2f} | corrected WAR {100 * corrected['war']:.2f} "
               f"UAR {100 * corrected['uar']:.2f} | {out_dir}")


@eval_group.command("suite")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="One run folder per dataset found, and table.md / table.csv.")
@click.option("--split", default=None, help="One split for every dataset (default: each dataset's own).")
@click.option("--model", type=click.Choice(["pipeline", "humanomni", "qwen-omni"]), default="pipeline", show_default=True)
@with_model_options
@click.option("--workers", type=POSITIVE, default=1, show_default=True, help="Processes (each loads its own models).")
@click.option("--limit", type=POSITIVE, default=None, help="Only the first N items of each dataset (a quick look).")
@click.option("--modalities", default=None, help="Limit the pipeline to: video, audio, text or modality names.")
@click.option("--enroll-speakers", is_flag=True, help="Pipeline: enrol each speaker of each dataset (transductive).")
@click.option("--adapt-corpus", is_flag=True, help="Pipeline: adapt the voice and the face to each dataset's files (transductive, unlabelled).")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="paper", show_default=True)
def eval_suite(root, out_dir, split, model, workers, limit, modalities, enroll_speakers, adapt_corpus, protocol,
               **model_kw) -> None:
    """Every dataset found under ROOT (the folders directly below it, each read by the adapter that knows its
    layout), each scored in its own label set and split, then one table: `omniemo eval suite ~/corpora --out runs/all`.

    Resumable like `eval`; a dataset that cannot run is reported and the rest go on.
    """
    from omniemo.data.datasets import DatasetError
    from omniemo.eval.runner import EvalConfig, comparison_table, run_suite
    from omniemo.perception.models import quiet_native_stderr

    template = EvalConfig(dataset="", root="", out_dir="", split=split, model=model, workers=workers, limit=limit,
                          model_options={**({"modalities": modalities} if modalities else {}),
                                         **model_options(model, model_kw)},
                          enroll_speakers=enroll_speakers, adapt_corpus=adapt_corpus)
    try:
        with quiet_native_stderr() as stderr, ExitStack() as bars:  # one bar per dataset, all closed at the end
            runs = run_suite(root, out_dir, template, progress=lambda name: bars.enter_context(TerminalBar(stderr, name)))
    except (DatasetError, ValueError) as exc:
        fail(str(exc))
    for run in runs:
        if run.error:
            click.echo(f"{run.dataset} at {run.root}: not run ({run.error})")
        else:
            paper = run.summary["scores"][protocol]
            click.echo(f"{run.dataset} {run.summary['split']} at {run.root}: {paper['n']} items | WAR "
                       f"{100 * paper['war']:.2f} UAR {100 * paper['uar']:.2f} | {run.out_dir}")
    finished = [Path(run.out_dir) for run in runs if not run.error]
    if not finished:
        fail("no dataset ran")
    markdown, csv_text = comparison_table(finished, protocol, paper_rows=False)
    files.write_text(out_dir / "table.md", markdown + "\n")
    files.write_text(out_dir / "table.csv", csv_text)
    click.echo("\n" + markdown)


@eval_group.command("table")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="paper", show_default=True)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Also write the table as CSV.")
@click.option("--no-paper", is_flag=True, help="Leave out the R1-Omni paper's published rows.")
def eval_table(runs, protocol, csv_path, no_paper) -> None:
    """The comparison table of eval runs, in the seed's layout (Markdown; CSV with --csv)."""
    from omniemo.eval.runner import comparison_table

    try:
        markdown, csv_text = comparison_table(list(runs), protocol, paper_rows=not no_paper)
    except (FileNotFoundError, KeyError) as exc:
        fail(f"not an eval run folder: {exc}")
    except ValueError as exc:
        fail(str(exc))
    click.echo(markdown)
    if csv_path:
        files.write_text(csv_path, csv_text)
