"""`omniemo probe` and `omniemo synth`: media facts, and generated clips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from omniemo.cli.common import EXIT_BAD_INPUT, FiniteFloat, fail
from omniemo.media import MediaError, MediaInfo, probe


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


@click.command("probe")
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



@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--duration", type=FiniteFloat(0.0, 3600.0, " seconds"), default=4.0, show_default=True, help="Seconds.")
@click.option("--size", default="640x360", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--fps", type=FiniteFloat(0.0, 120.0, " frames per second"), default=25.0, show_default=True)
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
        fail(f"--size must be WIDTHxHEIGHT, got {size!r}")
    try:
        write_clip(out, duration, fps=fps, size=(width, height), audio=not no_audio)
    except KeyError:
        fail(f"{out}: unsupported extension {out.suffix!r}")
    click.echo(f"wrote {out}")


