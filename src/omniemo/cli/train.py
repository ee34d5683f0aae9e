"""`omniemo train`: the training recipes (speech emotion, fusion weights, SFT, GRPO)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from omniemo.cli.common import FiniteFloat, fail


@click.group("train")
def train_group() -> None:
    """Training recipes."""


@train_group.command("speech-emotion")
@click.option("--ravdess", "ravdess_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="RAVDESS speech folder (03-01-*.wav/.flac, flat or Actor_XX/).")
@click.option("--cremad", "cremad_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="CREMA-D AudioWAV folder (VideoDemographics.csv beside it for sex).")
@click.option("--ased", "ased_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="ASED v1 folder (01Neutral ... 05Angry).")
@click.option("--urdu", "urdu_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="URDU folder (Angry Happy Neutral Sad).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("speech-emotion-model"),
              show_default=True, help="Where the weights file, scores and model card go.")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path), help="Feature cache file (.npz), reused by later runs.")
@click.option("--augment", type=click.IntRange(0, 8), default=1, show_default=True,
              help="Augmented copies of each training clip (rooms, microphones, noise, codecs).")
@click.option("--clipped", type=click.IntRange(0, 4), default=1, show_default=True,
              help="Clipped copies of each training clip (1-20 % of the samples at the rails).")
@click.option("--l2", type=FiniteFloat(0.0, 100.0), default=0.05, show_default=True, help="L2 penalty of the classifier.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Processes for feature extraction.")
@click.option("--no-previous", is_flag=True, help="Skip retraining the previous model (tiny.en + eGeMAPS) beside it.")
def train_speech_emotion(ravdess_root, cremad_root, ased_root, urdu_root, out_dir, cache, augment, clipped, l2, seed,
                         workers, no_previous) -> None:
    """Train the speech-emotion model on up to four corpora; report leave-one-corpus-out and test-speaker scores.

    Writes the weights, scores.json and the model card. To update the shipped model:
    --out-dir src/omniemo/perception/weights.
    """
    from omniemo.train.speech_emotion import SpeechEmotionConfig, train

    roots = {"ravdess": ravdess_root, "cremad": cremad_root, "ased": ased_root, "urdu": urdu_root}
    roots = {k: v for k, v in roots.items() if v}
    if not roots:
        fail("give at least one corpus: --ravdess, --cremad, --ased, --urdu")
    config = SpeechEmotionConfig(roots=roots, out_dir=out_dir, cache=cache, seed=seed, workers=workers,
                                 augment=augment, clipped=clipped, l2=l2,
                                 legacy=not no_previous)
    try:
        report = train(config)
    except ValueError as exc:
        fail(str(exc))
    for held, r in report["leave_one_corpus_out"].items():
        click.echo(f"held out {held}: single-clip UAR {r['single']['paper']['uar']:.1f}, corpus-adapted "
                   f"{r['corpus']['paper']['uar']:.1f}, enrolled {r['enrolled']['paper']['uar']:.1f}")
    test = report["shipped"]["single"].get("ravdess/test")
    if test:
        click.echo(f"RAVDESS test 21-24 UAR: single clip {test['paper']['uar']:.1f}, corpus-adapted "
                   f"{report['shipped']['corpus']['ravdess/test']['paper']['uar']:.1f}, enrolled "
                   f"{report['shipped']['enrolled']['ravdess/test']['paper']['uar']:.1f}")
    click.echo(f"wrote {out_dir}/speech_emotion.npz and MODEL_CARD.md")


@train_group.command("face-expression")
@click.option("--fer2013", "fer2013_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="FER2013 folder with labels.csv (file,split,label; split train or publictest).")
@click.option("--rafdb", "rafdb_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="RAF-DB basic folder with labels.csv (file,split,label).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("face-expression-model"),
              show_default=True, help="Where the ONNX weights, config, scores and model card go.")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path), help="Aligned-crop cache (.npz), reused by later runs.")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=FiniteFloat(0.0, 1.0), default=2e-3, show_default=True, help="Peak learning rate (one-cycle).")
@click.option("--width", type=click.IntRange(min=4), default=32, show_default=True, help="Channels of the first stage.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--nets", type=click.IntRange(min=1), default=1, show_default=True,
              help="Networks to train (seeds --seed, --seed + 1, ...), shipped as one model: their logits averaged.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Torch threads.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N images per source and split, a seeded sample of each (a quicker run).")
@click.option("--refit", is_flag=True, help="Do not train: redo the calibration and the product with the outside models "
              "for the nets already in --out-dir (their training records are kept).")
@click.option("--with-net", "with_nets", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --refit: add this ONNX net of another run (e.g. another --seed; its scores file beside it) "
              "to the model. Repeatable.")
@click.option("--held-out-run", "held_out_runs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The --out-dir of a run trained on one face set alone: read on the other set, it measures how much "
              "softer the shipped probabilities must be on faces unlike the training ones. Repeatable.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Train the nets of this model's out-dir further (--epochs more, at --lr) instead of new ones.")
@click.option("--degrade", is_flag=True, help="Augment with worse pictures too: heavier blur and small faces brought back up.")
def train_face_expression(fer2013_root, rafdb_root, out_dir, cache, epochs, batch_size, lr, width, seed, nets, threads,
                          limit, refit, with_nets, held_out_runs, init_from, degrade) -> None:
    """Train the facial-expression model on FER2013 and RAF-DB (CPU, torch), calibrate it, export ONNX + model card.

    To update the shipped model: --out-dir src/omniemo/perception/weights.
    """
    from omniemo.train import face_expression

    if not (fer2013_root or rafdb_root):
        fail("give --fer2013 and/or --rafdb")
    config = face_expression.FaceExpressionConfig(fer2013_root=fer2013_root, rafdb_root=rafdb_root, out_dir=out_dir, cache=cache,
                                  epochs=epochs, batch_size=batch_size, lr=lr, width=width, seed=seed, nets=nets,
                                  threads=threads, limit=limit, with_nets=list(with_nets),
                                  held_out_runs=list(held_out_runs), init_from=init_from, degrade=degrade)
    if with_nets and not refit:
        fail("--with-net goes with --refit")
    if refit and (init_from or degrade):
        fail("--init-from and --degrade train: they do not go with --refit")
    try:
        report = (face_expression.refit if refit else face_expression.train)(config)
    except ValueError as exc:
        fail(str(exc))
    for name, models in report["validation"].items():
        shipped = next(v for k, v in models.items() if "shipped" in k)
        click.echo(f"{name}: shipped WAR {shipped['war']:.1f} UAR {shipped['uar']:.1f} | fer {models['fer mini-Xception']['uar']:.1f} "
                   f"| facex {models['facex']['uar']:.1f} | face-api.js {models['face-api.js']['uar']:.1f} (UAR)")
    click.echo(f"wrote {out_dir}/{', '.join(n['file'] for n in report['nets'])} and FACE_MODEL_CARD.md")


@train_group.command("fusion")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[:MODALITIES]...")
@click.option("--fit", default="face,voice", show_default=True,
              help="Modalities whose weights are fitted (face, voice, text); the others keep their prior weight.")
@click.option("--prior-sd", type=FiniteFloat(0.0, 100.0), default=1.0, show_default=True,
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
        fail(str(exc))
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
        fail(f"{config_path}: {exc}")
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
