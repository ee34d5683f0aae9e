"""What the command groups share: the AI Act note, exit codes, errors without tracebacks, common options."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

AI_ACT_NOTE = (
    "Responsible use: the EU AI Act prohibits emotion recognition in workplaces and education "
    "institutions, except for medical or safety reasons. Analysis runs on this device and makes no "
    "network call."
)
EXIT_BAD_INPUT = 2


def expand_paths(paths) -> list[Path]:
    """Files given directly, and the files of each folder given, in name order."""
    return [f for p in paths for f in (sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p])]


def echo_adaptation(voice, face) -> None:
    """One line each on stderr: how the voice and the face were adapted to a set (``--adapt``), or that one was not."""
    for name, profile in (("voice", voice), ("face", face)):
        click.echo(f"{name}: {profile.describe() if profile else 'not adapted (too few files with it)'}", err=True)


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


class FiniteFloat(click.ParamType):
    """A finite number in (low, high]: nan, inf and out-of-range values are usage errors, never tracebacks."""

    name = "number"

    def __init__(self, low: float, high: float, unit: str = ""):
        self.low, self.high, self.unit = low, high, unit

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low < number <= self.high:
            self.fail(f"{value!r} must be above {self.low:g} and at most {self.high:g}{self.unit}", param, ctx)
        return number


# frames per second analysed: above 0, at most what cameras record (more only repeats frames)
FPS = FiniteFloat(0.0, 30.0, " frames per second")
POSITIVE = click.IntRange(min=1)


MODEL_OPTIONS = [
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
    click.option("--max-new-tokens", type=click.IntRange(min=1), default=512, show_default=True, help="Omni backends: output length cap."),
    click.option("--sample/--greedy", "do_sample", default=False, show_default=True,
                 help="Omni backends: sample (temperature 1, top-k 50) instead of greedy decoding."),
    click.option("--instruction", default=None,
                 help="Omni backends: the question (default: R1-Omni's training/demo prompt with its format line; "
                      "'eval': its evaluation scripts' question; or your own text)."),
]


def with_model_options(function):
    for option in reversed(MODEL_OPTIONS):
        function = option(function)
    return function


def model_options(backend: str, model_kw: dict) -> dict:
    """The omni options for an omni backend (fails early without --model-path); none for the pipeline."""
    if backend == "pipeline":
        return {}
    if model_kw.get("model_path") is None:
        fail(f"--backend {backend} needs --model-path DIR (a checkpoint folder; `omniemo models tiny` makes one)")
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in model_kw.items() if v is not None}


class TerminalBar:
    """A tqdm bar on ``stream`` (the real stderr: fd 2 is silenced for the native libraries) when it is a terminal
    and not CI; used as the ``progress(done, total)`` callback of the runners, as a context manager inside the
    block that owns ``stream``."""

    def __init__(self, stream, desc: str):
        import os

        self.stream, self.desc, self.bar = stream, desc, None
        self.enabled = stream.isatty() and os.environ.get("CI") != "true"

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="clip", file=self.stream, disable=not self.enabled)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        # Closed while ``stream`` is still open: the final 100% line is written by close().
        if self.bar is not None:
            self.bar.close()
        return False


class Progress:
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


def dataset_options(fold, modality, channel, perceived) -> dict:
    options = {}
    if fold is not None:
        options["fold"] = fold
    if modality:
        options["modality"] = modality
    if channel:
        options["channel"] = channel
    if perceived:
        options["perceived"] = perceived
    return options


DATASET_OPTIONS = [
    click.option("--split", default=None,
                 help="train, dev, test or all (default: test where the dataset has a speaker split, all for the public"
                      " corpora no model here trained on); KDEF: frontal, half or profile; CK+: peak or onset."),
    click.option("--fold", type=click.IntRange(1, 5), default=None, help="DFEW/MAFW official fold 1-5 (default 1)."),
    click.option("--modality", type=click.Choice(["any", "audio-video", "video", "audio"]), default=None,
                 help="RAVDESS or SAVEE files to take (default any)."),
    click.option("--channel", type=click.Choice(["any", "speech", "song"]), default=None, help="RAVDESS speech or song."),
    click.option("--perceived", type=click.Choice(["multimodal", "voice", "face"]), is_flag=False,
                 flag_value="multimodal", default=None,
                 help="CREMA-D: score against the crowd's vote (summaryTable.csv): seeing and hearing the clip "
                      "(multimodal, the default), the voice alone (voice) or the face alone (face)."),
]


def with_dataset_options(function):
    for option in reversed(DATASET_OPTIONS):
        function = option(function)
    return function


ENGINE_OPTIONS = [
    click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                 help="local: this machine (--workers processes); ray: Ray Data, on this machine or --ray-address."),
    click.option("--ray-address", default=None, help="ray: a running cluster (e.g. ray://head:10001 or auto); default: start Ray here."),
    click.option("--num-cpus-per-worker", type=FiniteFloat(0.0, 1024.0), default=1.0, show_default=True,
                 help="ray: CPUs each predictor actor reserves."),
    click.option("--num-gpus-per-worker", type=click.FloatRange(0.0, 64.0), default=0.0, show_default=True,
                 help="ray: GPUs each actor reserves (omni backends)."),
]


def with_engine_options(function):
    for option in reversed(ENGINE_OPTIONS):
        function = option(function)
    return function
