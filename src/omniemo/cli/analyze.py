"""`omniemo analyze` (the main job) and `omniemo cues` (the evidence record)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from omniemo import files
from omniemo.cli.common import (
    AI_ACT_NOTE,
    EXIT_BAD_INPUT,
    FPS,
    Progress,
    echo_adaptation,
    expand_paths,
    fail,
    model_options,
    with_model_options,
)
from omniemo.files import OutputError, check_writable
from omniemo.media import MediaError


@click.command("analyze", help=f"""Emotion of each CLIP with grounded reasoning, offline on the CPU.

Prints the reference format, <think>...</think> then <answer>label</answer>; every reasoning sentence rests
on measured cues (see --json). Works with any subset of video, voice and words.

{AI_ACT_NOTE}""")
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--labels", default="dfew", show_default=True,
              help="Label set: dfew, mafw, ravdess, cremad, mer2023, or a comma list of emotion words.")
@click.option("--backend", type=click.Choice(["pipeline", "humanomni", "qwen-omni"]), default="pipeline",
              show_default=True, help="pipeline: the CPU cue pipeline; humanomni / qwen-omni: an omni model (--model-path).")
@click.option("--fps", type=FPS, default=5.0, show_default=True, help="Frames per second analysed (at most 30).")
@click.option("--modalities", default=None, help="Limit to: video, audio, text or modality names (default: all).")
@click.option("--json", "as_json", is_flag=True, help="JSON: label, probabilities, contributions, reasoning with cue ids, evidence.")
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="Write a self-contained HTML report (a folder when several clips are given).")
@click.option("--timeline", "with_timeline", is_flag=True, help="Add per-5-second emotions (for long clips).")
@click.option("--enroll", "enroll", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Clips of the same speaker (repeat, or a folder): the voice model normalises by this speaker.")
@click.option("--adapt", "adapt", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Clips or images recorded the same way as these (repeat, or a folder; 10 or more, any people and "
                   "emotions): the voice model centres on their mean, which carries the room, microphone and language, "
                   "and our face-expression nets are re-standardised on their faces (camera, light, posing).")
@with_model_options
def analyze_command(clips, labels, backend, fps, modalities, as_json, report_path, with_timeline, enroll, adapt,
                    **model_kw) -> None:
    from omniemo.answers import parse_label
    from omniemo.labels import get_labelset
    from omniemo.perception import parse_modalities
    from omniemo.perception.models import ModelUnavailableError, quiet_native_stderr
    from omniemo.predictor import get_predictor

    try:
        labelset = get_labelset(labels)
        report_files = _report_targets(clips, report_path) if report_path is not None else {}
        if modalities:
            parse_modalities(modalities)
    except (ValueError, OutputError) as exc:
        fail(str(exc))
    enroll_files, adapt_files = expand_paths(enroll), expand_paths(adapt)
    options = {k: v for k, v in (("enroll", enroll_files), ("adapt", adapt_files)) if v}
    if backend != "pipeline" and (report_path or with_timeline or enroll_files or adapt_files):
        fail("--report, --timeline, --enroll and --adapt work with the cue pipeline (--backend pipeline) only")
    options.update(model_options(backend, model_kw))
    try:  # one predictor for the batch: models, the speaker enrolment and the adaptation are prepared once
        with quiet_native_stderr():
            predictor = get_predictor(backend, fps=fps, modalities=modalities, timeline=with_timeline,
                                      keep_keyframes=report_path is not None, **options)
    except (MediaError, ValueError) as exc:
        what = "enrolment" if enroll_files else "adaptation" if adapt_files else None
        fail(f"{what}: {exc}" if what else str(exc))
    except RuntimeError as exc:  # CheckpointError: the folder or one of its parts cannot be used
        fail(str(exc))
    if adapt_files:
        echo_adaptation(predictor.voice_profile, predictor.face_profile)
    failed = 0
    for clip in clips:
        try:
            with quiet_native_stderr() as stderr, Progress(clip, stderr) as update:
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

            write_report(prediction, report_files[clip])
            click.echo(f"report: {report_files[clip]}", err=True)
        if as_json:
            click.echo(json.dumps(prediction.to_dict(), indent=None if len(clips) > 1 else 2))
        else:
            if len(clips) > 1:
                click.echo(f"== {clip}")
            click.echo(prediction.output if prediction.output.strip() else "(empty output)")
            for note in (prediction.evidence.clip.get("notes", []) if prediction.evidence is not None else []):
                click.echo(f"note: {clip}: {note}", err=True)  # how the file decoded: truncated, rotated, ...
            if parse_label(prediction.output, labelset) is None:
                click.echo(f"note: no answer in the {labelset.name} label set could be parsed from the model's output "
                           f"({len(prediction.output)} characters, printed as it came)", err=True)
            if prediction.timeline:
                for row in prediction.timeline:
                    click.echo(f"  {row['start']:6.1f}-{row['end']:6.1f} s  {row['label'] or '-'}", err=True)
    if failed:
        sys.exit(EXIT_BAD_INPUT)


def _report_targets(clips, report_path: Path) -> dict[Path, Path]:
    """Where each clip's report goes, checked before any analysis: the file itself for one clip, else one file
    per clip in the folder (created if its parent exists), named by stem, or stem + extension where stems clash."""
    if len(clips) == 1:
        return {clips[0]: check_writable(report_path)}
    check_writable(report_path, directory=True)
    report_path.mkdir(parents=True, exist_ok=True)
    stems = [c.stem for c in clips]
    names: dict[Path, Path] = {}
    for clip in clips:
        name = clip.stem if stems.count(clip.stem) == 1 else f"{clip.stem}{clip.suffix.replace('.', '-')}"
        candidate, n = name, 1
        while report_path / f"{candidate}.html" in names.values():  # same name in two folders
            n += 1
            candidate = f"{name}-{n}"
        names[clip] = report_path / f"{candidate}.html"
    return names


def _format_cue(cue) -> str:
    from omniemo.perception.evidence import spans_text, value_text

    spans = spans_text(cue.spans)
    return f"  {cue.name:<24} {value_text(cue.value)} {cue.unit}" + (f"  [{spans}]" if spans else "")


@click.command("cues")
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--fps", type=FPS, default=5.0, show_default=True, help="Frames per second analysed for face and body (at most 30).")
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
        if out is not None:
            check_writable(out)
    except (ValueError, OutputError) as exc:
        fail(str(exc))
    try:
        with quiet_native_stderr() as stderr, Progress(clip, stderr) as update:
            evidence = extract_cues(clip, fps=fps, modalities=wanted, progress=update)
    except MediaError as exc:
        fail(str(exc))
    except ModelUnavailableError as exc:
        fail(f"{clip}: {exc}")
    record = evidence.to_json(indent=2)
    if out is not None:
        files.write_text(out, record + "\n")
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
