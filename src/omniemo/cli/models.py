"""`omniemo models`: omni model checkpoints."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("models")
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
