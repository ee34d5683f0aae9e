"""`omniemo serve`: the HTTP API and web page (the app lives in ``omniemo.serve``; this only starts it)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from omniemo.cli.common import AI_ACT_NOTE, FiniteFloat, echo_adaptation, expand_paths, fail


@click.command("serve", help=f"""Serve analysis over HTTP: an API (docs at /docs) and a web page at /.

Binds to 127.0.0.1 by default; any other address needs a token (--token or $OMNIEMO_TOKEN), which every /v1
route then requires as `Authorization: Bearer TOKEN`.

{AI_ACT_NOTE}""")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (each loads the models once).")
@click.option("--token", default=None, help="Bearer token for /v1 (default: $OMNIEMO_TOKEN).")
@click.option("--max-upload-mb", type=FiniteFloat(0.0, 100_000.0), default=200.0, show_default=True)
@click.option("--max-duration-s", type=FiniteFloat(0.0, 86_400.0), default=1800.0, show_default=True,
              help="Longest clip accepted, in seconds.")
@click.option("--queue", "queue_size", type=click.IntRange(1, 10_000), default=8, show_default=True,
              help="Jobs that may wait; more get 429 with Retry-After.")
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep jobs and results in this folder (SQLite) across restarts; default: in memory.")
@click.option("--ttl-s", type=FiniteFloat(0.0, 365 * 86_400.0), default=24 * 3600.0, show_default=True,
              help="Finished jobs and their files are deleted after this long.")
@click.option("--cors", default=None, help="Allow this browser origin (CORS is off by default).")
@click.option("--adapt", "adapt", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Clips or images recorded the way the served ones will be (repeat, or a folder; 10 or more, any people "
                   "and emotions): the voice of every analysis is read against their mean and the face with nets "
                   "re-standardised on their faces; the set is read once at start.")
def serve_command(host, port, workers, token, max_upload_mb, max_duration_s, queue_size, state, ttl_s, cors,
                  adapt) -> None:
    import uvicorn

    from omniemo.media import MediaError
    from omniemo.serve import ServeSettings, create_app

    token = token or os.environ.get("OMNIEMO_TOKEN") or None
    adaptation = {}
    if adapt:  # read once here, not in each worker: every worker gets the same profiles
        from omniemo.perception.pipeline import adapt_to_set

        try:
            voice, face = adapt_to_set(expand_paths(adapt))
        except (MediaError, ValueError) as exc:
            fail(f"adaptation: {exc}")
        adaptation = {f"{name}_profile": profile for name, profile in (("voice", voice), ("face", face)) if profile}
        echo_adaptation(voice, face)
    settings = ServeSettings(host=host, port=port, workers=workers, token=token, max_upload_mb=max_upload_mb,
                             max_duration_s=max_duration_s, queue=queue_size, state=state, ttl_s=ttl_s, cors=cors,
                             adaptation=adaptation)
    try:
        app = create_app(settings)
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"omniemo serve on http://{host}:{port}/ ({workers} worker(s)); {AI_ACT_NOTE}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
