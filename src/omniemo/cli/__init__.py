"""The `omniemo` command. Exit codes: 0 ok, 2 bad input (the message names the file and the cause).

One module per command group; this one only assembles them.
"""

from __future__ import annotations

import click

from omniemo import __version__
from omniemo.cli.analyze import analyze_command, cues_command
from omniemo.cli.batch import batch_command
from omniemo.cli.common import AI_ACT_NOTE, EXIT_BAD_INPUT
from omniemo.cli.evaluate import datasets_group, eval_group, score_command
from omniemo.cli.media import probe_command, synth_command
from omniemo.cli.models import models_group
from omniemo.cli.serve import serve_command
from omniemo.cli.train import train_group

__all__ = ["AI_ACT_NOTE", "EXIT_BAD_INPUT", "main"]


@click.group(help=f"Explainable omni-modal emotion recognition, offline.\n\n{AI_ACT_NOTE}")
@click.version_option(__version__, prog_name="omniemo")
def main() -> None:
    pass


for command in (analyze_command, cues_command, probe_command, score_command, eval_group, datasets_group, models_group,
                train_group, synth_command, serve_command, batch_command):
    main.add_command(command)
