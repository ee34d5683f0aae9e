"""The `omniemo` command. Exit codes: 0 ok, 2 bad input (the message names the file and the cause)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from omniemo import __version__
from omniemo.eval.metrics import PROTOCOLS, UNPARSEABLE, Scores
from omniemo.eval.predictions import PredictionFileError, score_file
from omniemo.labels import LABEL_SETS
from omniemo.media import MediaError, MediaInfo, probe

AI_ACT_NOTE = (
    "Responsible use: the EU AI Act prohibits emotion recognition in workplaces and education "
    "institutions, except for medical or safety reasons. Analysis runs on this device and makes no "
    "network call."
)
EXIT_BAD_INPUT = 2


@click.group(help=f"Explainable omni-modal emotion recognition, offline.\n\n{AI_ACT_NOTE}")
@click.version_option(__version__, prog_name="omniemo")
def main() -> None:
    pass


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _describe_info(info: MediaInfo) -> str:
    parts = []
    if info.has_video:
        fps = f"{info.fps:.2f} fps" if info.fps else "? fps"
        count = f"{info.num_frames} frames" + ("" if info.num_frames_exact else " (est.)")
        parts.append(f"video {info.video_codec} {info.width}x{info.height} @ {fps}, {count}")
    else:
        parts.append("no video")
    if info.has_audio:
        parts.append(f"audio {info.audio_codec} {info.sample_rate} Hz x{info.channels}")
    else:
        parts.append("no audio")
    return f"{info.path}: {info.container}, {info.duration:.2f} s | " + " | ".join(parts)


@main.command("probe")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON array, one object per file.")
def probe_command(files: tuple[Path, ...], as_json: bool) -> None:
    """Print each file's media facts (container, streams, duration, fps, size) without decoding.

    A bad file is reported and the others are still probed; the exit code is 2 if any failed.
    """
    rows, failed = [], 0
    for path in files:
        try:
            info = probe(path)
        except MediaError as exc:
            failed += 1
            rows.append({"path": str(path), "error": {"kind": exc.kind, "message": str(exc)}})
            if not as_json:
                click.echo(f"error: {exc}", err=True)
            continue
        rows.append(info.to_dict())
        if not as_json:
            click.echo(_describe_info(info))
            for note in info.notes:
                click.echo(f"  note: {note}")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    if failed:
        sys.exit(EXIT_BAD_INPUT)


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


@main.command("score")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--labels", "labels", required=True, type=click.Choice(sorted(LABEL_SETS)), help="Label vocabulary.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="paper", show_default=True,
              help="paper: the R1-Omni scripts' rules; corrected: RAVDESS calm scored as neutral.")
@click.option("--bootstrap", type=int, default=1000, show_default=True, help="Bootstrap rounds for the 95% intervals (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def score_command(predictions: Path, labels: str, protocol: str, bootstrap: int, as_json: bool) -> None:
    """Score a predictions file: one JSON object a line with `label` and `prediction` or `output`.

    `output` is raw model text (the <answer> tag is parsed); `prediction` is an emotion word. Prints WAR,
    UAR with bootstrap 95% intervals, per-class recall and the confusion matrix.
    """
    try:
        scores, preds = score_file(predictions, labels, protocol=protocol, bootstrap=bootstrap)
    except PredictionFileError as exc:
        _fail(str(exc))
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


_MODEL_OPTIONS = [
    click.option("--model-path", type=click.Path(path_type=Path),
                 help="Omni backends: the checkpoint folder (HumanOmni/R1-Omni, or Qwen2.5-Omni).", default=None),
    click.option("--vision-tower", type=click.Path(path_type=Path), default=None,
                 help="humanomni: SigLIP folder (else $OMNIEMO_VISION_TOWER or the config's mm_vision_tower)."),
    click.option("--audio-tower", type=click.Path(path_type=Path), default=None,
                 help="humanomni: Whisper folder (else $OMNIEMO_AUDIO_TOWER or the config's mm_audio_tower)."),
    click.option("--bert", type=click.Path(path_type=Path), default=None,
                 help="humanomni: bert-base-uncased folder (else $OMNIEMO_BERT)."),
    click.option("--device", default=None, help="Omni backends: cpu, cuda, cuda:1 ... (default: cuda if present)."),
    click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
                 help="Omni backends: weights' precision (auto: bf16 on CUDA, fp32 on CPU)."),
    click.option("--max-new-tokens", type=int, default=512, show_default=True, help="Omni backends: output length cap."),
    click.option("--sample/--greedy", "do_sample", default=False, show_default=True,
                 help="Omni backends: sample (temperature 1, top-k 50) instead of greedy decoding."),
    click.option("--instruction", default=None,
                 help="Omni backends: the question (default: R1-Omni's training/demo prompt with its format line; "
                      "'eval': its evaluation scripts' question; or your own text)."),
]


def _with_model_options(function):
    for option in reversed(_MODEL_OPTIONS):
        function = option(function)
    return function


def _model_options(backend: str, model_kw: dict) -> dict:
    """The omni options for an omni backend (fails early without --model-path); none for the pipeline."""
    if backend == "pipeline":
        return {}
    if model_kw.get("model_path") is None:
        _fail(f"--backend {backend} needs --model-path DIR (a checkpoint folder; `omniemo models tiny` makes one)")
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in model_kw.items() if v is not None}


@main.command("analyze", help=f"""Emotion of each CLIP with grounded reasoning, offline on the CPU.

Prints the reference format, <think>...</think> then <answer>label</answer>; every reasoning sentence rests
on measured cues (see --json). Works with any subset of video, voice and words.

{AI_ACT_NOTE}""")
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--labels", default="dfew", show_default=True,
              help="Label set: dfew, mafw, ravdess, cremad, mer2023, or a comma list of emotion words.")
@click.option("--backend", type=click.Choice(["pipeline", "humanomni", "qwen-omni"]), default="pipeline",
              show_default=True, help="pipeline: the CPU cue pipeline; humanomni / qwen-omni: an omni model (--model-path).")
@click.option("--fps", type=float, default=5.0, show_default=True, help="Frames per second analysed.")
@click.option("--modalities", default=None, help="Limit to: video, audio, text or modality names (default: all).")
@click.option("--json", "as_json", is_flag=True, help="JSON: label, probabilities, contributions, reasoning with cue ids, evidence.")
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="Write a self-contained HTML report (a folder when several clips are given).")
@click.option("--timeline", "with_timeline", is_flag=True, help="Add per-5-second emotions (for long clips).")
@click.option("--enroll", "enroll", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Clips of the same speaker (repeat, or a folder): the voice model normalises by this speaker.")
@_with_model_options
def analyze_command(clips, labels, backend, fps, modalities, as_json, report_path, with_timeline, enroll,
                    **model_kw) -> None:
    from omniemo.labels import get_labelset
    from omniemo.perception.models import ModelUnavailableError, quiet_native_stderr
    from omniemo.predictor import get_predictor

    try:
        labelset = get_labelset(labels)
    except ValueError as exc:
        _fail(str(exc))
    enroll_files = [f for p in enroll for f in (sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p])]
    options = {"enroll": enroll_files} if enroll_files else {}
    if backend != "pipeline" and (report_path or with_timeline or enroll_files):
        _fail("--report, --timeline and --enroll work with the cue pipeline (--backend pipeline) only")
    options.update(_model_options(backend, model_kw))
    try:  # one predictor for the batch: models and the speaker enrolment are prepared once
        with quiet_native_stderr():
            predictor = get_predictor(backend, fps=fps, modalities=modalities, timeline=with_timeline,
                                      keep_keyframes=report_path is not None, **options)
    except (MediaError, ValueError) as exc:
        _fail(f"enrolment: {exc}" if backend == "pipeline" else str(exc))
    except RuntimeError as exc:  # CheckpointError: the folder or one of its parts cannot be used
        _fail(str(exc))
    failed = 0
    for clip in clips:
        try:
            with quiet_native_stderr() as stderr, _progress(clip, stderr) as update:
                predictor.progress = update
                prediction = predictor.predict(clip, labelset)
        except (MediaError, ModelUnavailableError, ValueError) as exc:
            failed += 1
            message = str(exc) if str(clip) in str(exc) else f"{clip}: {exc}"
            if as_json:
                click.echo(json.dumps({"path": str(clip), "error": message}))
            else:
                click.echo(f"error: {message}", err=True)
            continue
        if report_path is not None:
            from omniemo.report import write_report

            target = report_path / f"{clip.stem}.html" if len(clips) > 1 else report_path
            write_report(prediction, target)
            click.echo(f"report: {target}", err=True)
        if as_json:
            click.echo(json.dumps(prediction.to_dict(), indent=None if len(clips) > 1 else 2))
        else:
            if len(clips) > 1:
                click.echo(f"== {clip}")
            click.echo(prediction.output)
            if prediction.timeline:
                for row in prediction.timeline:
                    click.echo(f"  {row['start']:6.1f}-{row['end']:6.1f} s  {row['label'] or '-'}", err=True)
    if failed:
        sys.exit(EXIT_BAD_INPUT)


def _format_cue(cue) -> str:
    value = cue.value
    if isinstance(value, float):
        value = f"{value:.3g}"
    elif isinstance(value, list):
        value = ", ".join(map(str, value))
    spans = ", ".join(f"{a:.2f}-{b:.2f}s" for a, b in cue.spans[:4]) + (" ..." if len(cue.spans) > 4 else "")
    return f"  {cue.name:<24} {value} {cue.unit}" + (f"  [{spans}]" if spans else "")


@main.command("cues")
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--fps", type=float, default=5.0, show_default=True, help="Frames per second analysed for face and body.")
@click.option("--modalities", default="video,audio,text", show_default=True,
              help="Comma list: video, audio, text, or face, body, pulse, appearance, voice, words.")
@click.option("--json", "as_json", is_flag=True, help="Print the evidence record as JSON (schema omniemo.evidence/1).")
@click.option("--out", type=click.Path(path_type=Path), help="Also write the JSON record to this file.")
def cues_command(clip: Path, fps: float, modalities: str, as_json: bool, out: Path | None) -> None:
    """Measure timestamped cues of a clip: face, body, pulse, appearance, voice and words.

    Every cue has a value, a unit, the time spans where it holds and the model that measured it; a missing
    modality says why (e.g. no face, no audio track, no speech). Runs offline on the CPU.
    """
    from omniemo.perception import extract_cues, parse_modalities
    from omniemo.perception.models import ModelUnavailableError, quiet_native_stderr

    try:
        wanted = parse_modalities(modalities)
    except ValueError as exc:
        _fail(str(exc))
    try:
        with quiet_native_stderr() as stderr, _progress(clip, stderr) as update:
            evidence = extract_cues(clip, fps=fps, modalities=wanted, progress=update)
    except MediaError as exc:
        _fail(str(exc))
    except ModelUnavailableError as exc:
        _fail(f"{clip}: {exc}")
    record = evidence.to_json(indent=2)
    if out is not None:
        out.write_text(record + "\n", encoding="utf-8")
    if as_json:
        click.echo(record)
        return
    click.echo(f"{clip}: {evidence.clip['duration']:.2f} s")
    for name, report in evidence.modalities.items():
        if report.status != "present":
            click.echo(f"{name}: {report.status}" + (f" ({report.reason})" if report.reason else ""))
            continue
        click.echo(f"{name}: present  [{report.model}]")
        for cue in evidence.cues_of(name):
            click.echo(_format_cue(cue))


class _progress:
    """A progress bar on stderr for clips longer than a minute; silent otherwise."""

    def __init__(self, clip: Path, stream=None):
        self.clip, self.stream, self.bar = clip, stream or sys.stderr, None

    def __enter__(self):
        def update(done: float, total: float) -> None:
            if total < 60:
                return
            if self.bar is None:
                self.bar = click.progressbar(length=int(total), label=f"{self.clip.name}", file=self.stream)
                self.bar.__enter__()
            self.bar.update(int(done) - self.bar.pos)

        return update

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def _dataset_options(fold, modality, channel, perceived) -> dict:
    options = {}
    if fold is not None:
        options["fold"] = fold
    if modality:
        options["modality"] = modality
    if channel:
        options["channel"] = channel
    if perceived:
        options["perceived"] = True
    return options


_DATASET_OPTIONS = [
    click.option("--split", default=None, help="train, dev, test or all (default: the dataset's test split)."),
    click.option("--fold", type=int, default=None, help="DFEW/MAFW official fold 1-5 (default 1)."),
    click.option("--modality", type=click.Choice(["any", "audio-video", "video", "audio"]), default=None,
                 help="RAVDESS files to take (default any)."),
    click.option("--channel", type=click.Choice(["any", "speech", "song"]), default=None, help="RAVDESS speech or song."),
    click.option("--perceived", is_flag=True, help="CREMA-D: score against the crowd's vote (summaryTable.csv)."),
]


def _with_dataset_options(function):
    for option in reversed(_DATASET_OPTIONS):
        function = option(function)
    return function


@main.group("datasets")
def datasets_group() -> None:
    """Dataset adapters: dfew, mafw, ravdess, cremad, mer2023, manifest (JSONL), r1omni (training JSON)."""


@datasets_group.command("check")
@click.argument("name")
@click.argument("root", type=click.Path(path_type=Path))
@_with_dataset_options
@click.option("--json", "as_json", is_flag=True)
def datasets_check(name, root, split, fold, modality, channel, perceived, as_json) -> None:
    """List a dataset split as the adapter reads it: items, label counts, speakers, missing files."""
    from dataclasses import asdict

    from omniemo.data.datasets import DatasetError, check

    try:
        report = check(name, root, split, **_dataset_options(fold, modality, channel, perceived))
    except DatasetError as exc:
        _fail(str(exc))
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


@datasets_group.command("toy")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train", "n_train", type=int, default=48, show_default=True)
@click.option("--test", "n_test", type=int, default=24, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def datasets_toy(out_dir, n_train, n_test, seed) -> None:
    """Write the toy task (1 s clips whose colour and tone give the label) and its manifest, for tiny training runs."""
    from omniemo.train.toy import write_toy_dataset

    click.echo(f"wrote {write_toy_dataset(out_dir, n_train, n_test, seed)}")


@main.group("eval", invoke_without_command=True)
@click.option("--dataset", help="dfew, mafw, ravdess, cremad, mer2023, manifest or r1omni.")
@click.option("--root", type=click.Path(path_type=Path), help="The dataset's folder (or manifest file).")
@_with_dataset_options
@click.option("--model", type=click.Choice(["pipeline", "humanomni", "qwen-omni"]), default="pipeline", show_default=True,
              help="Predictor backend (omni models take --model-path).")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Omni models: clips per model call.")
@_with_model_options
@click.option("--labels", default=None, help="Label set the model answers in (default: the dataset's).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes (each loads its own models).")
@click.option("--limit", type=int, default=None, help="Only the first N items (a quick look).")
@click.option("--modalities", default=None, help="Limit the pipeline to: video, audio, text or modality names.")
@click.option("--enroll-speakers", is_flag=True,
              help="Pipeline: normalise the voice per speaker with all of that speaker's clips in the run (enrolment; transductive).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder: predictions.jsonl, scores.json, run.json, PNGs.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
def eval_group(ctx, dataset, root, split, fold, modality, channel, perceived, model, batch_size, labels, workers,
               limit, modalities, enroll_speakers, out_dir, as_json, **model_kw) -> None:
    """Score a model on a dataset split: `omniemo eval --dataset NAME --root DIR --out DIR`.

    Resumable: predictions.jsonl grows as items finish, a re-run skips them, a failing file becomes an error
    row. Scores both protocols (paper, corrected) with bootstrap intervals. `omniemo eval table RUN...`
    prints the comparison table.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not (dataset and root and out_dir):
        _fail("eval needs --dataset, --root and --out (or a subcommand: table)")
    from omniemo.data.datasets import DatasetError
    from omniemo.eval.runner import EvalConfig, run_eval

    config = EvalConfig(dataset=dataset, root=str(root), out_dir=str(out_dir), split=split, model=model, labels=labels,
                        workers=workers, limit=limit, dataset_options=_dataset_options(fold, modality, channel, perceived),
                        model_options={**({"modalities": modalities} if modalities else {}),
                                       **_model_options(model, model_kw)}, batch_size=batch_size,
                        enroll_speakers=enroll_speakers)
    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=f"{dataset} {split or ''}".strip(), file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        from omniemo.perception.models import quiet_native_stderr

        with quiet_native_stderr():
            summary = run_eval(config, progress=progress)
    except (DatasetError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    paper, corrected = summary["scores"]["paper"], summary["scores"]["corrected"]
    click.echo(f"{dataset} {summary['split']}: {paper['n']} items ({summary['scores']['errors']} errors) | paper WAR "
               f"{100 * paper['war']:.2f} UAR {100 * paper['uar']:.2f} | corrected WAR {100 * corrected['war']:.2f} "
               f"UAR {100 * corrected['uar']:.2f} | {out_dir}")


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
        _fail(f"not an eval run folder: {exc}")
    click.echo(markdown)
    if csv_path:
        csv_path.write_text(csv_text, encoding="utf-8")


@main.group("models")
def models_group() -> None:
    """Omni model checkpoints."""


@models_group.command("tiny")
@click.argument("kind", type=click.Choice(["humanomni", "qwen-omni"]))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
def models_tiny(kind, out_dir, seed) -> None:
    """Write a tiny random checkpoint in the real layout (smoke tests: its answers are noise)."""
    if kind == "humanomni":
        from omniemo.models.tiny import write_tiny_humanomni as write
    else:
        from omniemo.models.qwen_omni import write_tiny_qwen_omni as write
    from omniemo.models.loading import quiet_transformers

    quiet_transformers()
    path = write(out_dir, seed=seed)
    click.echo(f"{kind} tiny checkpoint: {path}  (omniemo analyze CLIP --backend {kind} --model-path {path})")


@main.group("train")
def train_group() -> None:
    """Training recipes."""


@train_group.command("speech-emotion")
@click.option("--ravdess", "ravdess_root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="RAVDESS speech folder (03-01-*.wav/.flac, flat or Actor_XX/).")
@click.option("--cremad", "cremad_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="CREMA-D AudioWAV folder (optional; VideoDemographics.csv beside it for sex).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("speech-emotion-model"),
              show_default=True, help="Where the weights file, scores and model card go.")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path), help="Feature cache file (.npz), reused by later runs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="Processes for feature extraction.")
@click.option("--no-baseline", is_flag=True, help="Skip the classic openSMILE recipe run beside it.")
@click.option("--enrolled-speaker-only", is_flag=True,
              help="Give the enrolled model speaker-normalised features only (by default it also gets the training-normalised ones).")
def train_speech_emotion(ravdess_root, cremad_root, out_dir, cache, seed, workers, no_baseline, enrolled_speaker_only) -> None:
    """Train the speech-emotion model (speaker-independent splits) and write weights + model card.

    Train RAVDESS actors 01-16 + CREMA-D 1001-1024, choose on 17-20 + 1025-1030, report on RAVDESS 21-24.
    To update the shipped model: --out-dir src/omniemo/perception/weights.
    """
    from omniemo.train.speech_emotion import SpeechEmotionConfig, train

    config = SpeechEmotionConfig(ravdess_root=ravdess_root, cremad_root=cremad_root, out_dir=out_dir, cache=cache,
                                 seed=seed, workers=workers, baseline=not no_baseline,
                                 enrolled_with_global=not enrolled_speaker_only)
    try:
        report = train(config)
    except ValueError as exc:
        _fail(str(exc))
    single = report["variants"]["single"]["ravdess/test"]["paper"]
    enrolled = report["variants"]["enrolled"]["ravdess/test"]["paper"]
    click.echo(f"RAVDESS test 21-24 UAR: single clip {single['uar']:.1f}, enrolled {enrolled['uar']:.1f}; "
               f"wrote {out_dir}/speech_emotion.npz and MODEL_CARD.md")


@train_group.command("fusion")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[:MODALITIES]...")
@click.option("--fit", default="face,voice", show_default=True,
              help="Modalities whose weights are fitted (face, voice, text); the others keep their prior weight.")
@click.option("--prior-sd", type=float, default=1.0, show_default=True,
              help="Spread of the Gaussian prior around the prior weights (smaller: stay closer to them).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write fusion_weights.json and FUSION_CARD.md here (the shipped ones: src/omniemo/reasoning/weights).")
@click.option("--note", "notes", multiple=True, help="A line for the card's notes, e.g. why a modality was not fitted (repeatable).")
def train_fusion(runs, fit, prior_sd, out_dir, notes) -> None:
    """Fit the fusion weights on `omniemo eval` runs of the cue pipeline (labelled clips).

    RUN is an eval output folder; RUN:face,voice uses only those modalities of its clips (e.g. :face where
    the voice model was trained on the same speakers). Prints the fused NLL, accuracy, UAR and calibration
    error (ECE) before and after, per run.
    """
    from omniemo.train.fusion import FusionFitConfig, train

    config = FusionFitConfig(runs=list(runs), fit=tuple(m for m in fit.split(",") if m), prior_sd=prior_sd, out_dir=out_dir,
                             notes=list(notes))
    try:
        report = train(config)
    except ValueError as exc:
        _fail(str(exc))
    click.echo("weights: " + ", ".join(f"{m} {report['start'][m]} -> {w}" for m, w in report["weights"].items()))
    for name, r in {**report["runs"], "all": report["all"]}.items():
        before, after = r["before"], r["after"]
        click.echo(f"{name}: {after['n']} clips | NLL {before['nll']} -> {after['nll']} | UAR {before['uar']} -> "
                   f"{after['uar']} | ECE {before['ece']} -> {after['ece']}")
    if out_dir:
        click.echo(f"wrote {Path(out_dir) / 'fusion_weights.json'}")


_RECIPE_OPTIONS = [
    click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="A YAML recipe (see recipes/)."),
    click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Overrides the recipe's output_dir (checkpoints, metrics.csv, final/)."),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override a recipe value, e.g. --set optim.lr=1e-5 --set model.path=DIR (repeatable)."),
]


def _with_recipe_options(function):
    for option in reversed(_RECIPE_OPTIONS):
        function = option(function)
    return function


def _run_recipe(kind: str, config_path: Path, output_dir: Path | None, overrides: tuple[str, ...]) -> None:
    from omniemo.models.loading import CheckpointError
    from omniemo.train.config import load_config

    try:
        config = load_config(config_path, list(overrides) + ([f"output_dir={output_dir}"] if output_dir else []))
        if kind == "sft":
            from omniemo.train.sft import train_sft as run
        else:
            from omniemo.train.grpo import train_grpo as run
        summary = run(config)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:
        _fail(f"{config_path}: {exc}")
    click.echo(json.dumps(summary))


@train_group.command("sft")
@_with_recipe_options
def train_sft_command(config_path, output_dir, overrides) -> None:
    """Supervised fine-tuning of an omni model: reasoning cold start or label-only targets.

    Runs on one CPU as is, and on many GPUs under `accelerate launch` (recipes/accelerate/*.yaml).
    """
    _run_recipe("sft", config_path, output_dir, overrides)


@train_group.command("grpo")
@_with_recipe_options
def train_grpo_command(config_path, output_dir, overrides) -> None:
    """GRPO with verifiable rewards (accuracy + format by default, as R1-Omni), from an SFT checkpoint."""
    _run_recipe("grpo", config_path, output_dir, overrides)


@main.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--duration", type=float, default=4.0, show_default=True, help="Seconds.")
@click.option("--size", default="640x360", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--fps", type=float, default=25.0, show_default=True)
@click.option("--no-audio", is_flag=True, help="Video only.")
@click.option("--demo", is_flag=True, help="The demo clip instead: a real portrait (public domain) and a spoken "
              "sentence (espeak-ng, if installed), as MP4.")
def synth_command(out: Path, duration: float, size: str, fps: float, no_audio: bool, demo: bool) -> None:
    """Write a synthetic test clip (moving shape + harmonic tone); format from the extension."""
    from omniemo.media.synth import write_clip, write_demo_clip

    if demo:
        write_demo_clip(out)
        click.echo(f"wrote {out}")
        return
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        _fail(f"--size must be WIDTHxHEIGHT, got {size!r}")
    try:
        write_clip(out, duration, fps=fps, size=(width, height), audio=not no_audio)
    except KeyError:
        _fail(f"{out}: unsupported extension {out.suffix!r}")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
