"""The HTTP API and the web page: a thin FastAPI app over the job store and the worker pool.

Routes hold no analysis logic: an upload is streamed to a private folder, checked by decoding its headers
(``omniemo.probe``: the type is what the bytes are, never what the name says), stored as a job and queued; the
workers run the same ``Predictor`` as `omniemo analyze`, and a finished job holds the same JSON as
`analyze --json`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import shutil
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from omniemo import __version__
from omniemo.serve.jobs import Job, JobStore, QueueFull, WorkerPool
from omniemo.serve.uploads import BadUpload, UploadTooLarge, receive_upload

AI_ACT_NOTE = ("The EU AI Act prohibits emotion recognition systems in workplaces and education institutions, "
               "except for medical or safety reasons. Do not use this service there. Analysis runs on this server "
               "and makes no network call.")


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    token: str | None = None
    max_upload_mb: float = 200.0
    max_duration_s: float = 1800.0
    queue: int = 8
    state: Path | None = None  # a folder: jobs.db + uploads survive a restart
    ttl_s: float = 24 * 3600.0  # finished jobs and their files are deleted after this long
    results_cap: int = 200
    cors: str | None = None
    factory: str = "omniemo.serve.jobs:pipeline_predictor"
    warm: bool = True
    # ``--adapt``: predictor options voice_profile (a VoiceProfile) and face_profile (a FaceProfile), each where the
    # set had enough of it: every analysis reads the voice and the face against them
    adaptation: dict = field(default_factory=dict)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- typed responses ----------------------------------------------------------------------------------------

class JobCreated(BaseModel):
    id: str
    status: str
    queue_position: int
    url: str


class JobView(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    filename: str
    created: float
    options: dict
    error: str | None = None
    result: dict | None = Field(None, description="When done: the same JSON as `omniemo analyze --json`")
    report_url: str | None = None


class JobSummary(BaseModel):
    id: str
    status: str
    filename: str
    created: float
    label: str | None = None


class ModelsView(BaseModel):
    pipeline: dict
    omni_backends: list[dict]
    workers: int
    workers_ready: int
    voice_adaptation: str | None = None  # "adapted to a recording set (N clips)" when served with --adapt
    face_adaptation: str | None = None  # "adapted to a set (N files with a face; how)" when served with --adapt


class Health(BaseModel):
    status: str
    version: str
    queued: int


def _view(job: Job) -> JobView:
    report = f"/v1/analyses/{job.id}/report" if job.status == "done" and (Path(job.folder) / "report.html").exists() else None
    return JobView(id=job.id, status=job.status, progress=job.progress, filename=job.filename, created=job.created,
                   options={k: v for k, v in job.options.items() if k != "backend_options"}, error=job.error,
                   result=job.result, report_url=report)


# --- the app --------------------------------------------------------------------------------------------------

def create_app(settings: ServeSettings) -> FastAPI:
    if not is_loopback(settings.host) and not settings.token:
        raise ValueError(f"refusing to serve on {settings.host} (not loopback) without a token: give --token or $OMNIEMO_TOKEN")
    root = Path(settings.state) if settings.state else Path(tempfile.mkdtemp(prefix="omniemo-serve-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    store = JobStore(root / "jobs.db" if settings.state else None, cap=settings.results_cap)
    holder: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for job in store.unfinished():  # a restart: what was running is lost, say so
            store.update(job.id, status="failed", error="the server restarted before this analysis finished")
        holder["pool"] = WorkerPool(store, settings.workers, settings.queue, settings.factory, settings.warm,
                                    settings.adaptation)
        stop = threading.Event()
        janitor = threading.Thread(target=_expire, args=(store, settings.ttl_s, stop), daemon=True)
        janitor.start()
        try:
            yield
        finally:
            stop.set()
            holder["pool"].close()
            if not settings.state:
                shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="omniemo", version=__version__, lifespan=lifespan,
                  description="Explainable emotion recognition of clips, offline. " + AI_ACT_NOTE)
    if settings.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=[settings.cors], allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization"])

    @app.exception_handler(Exception)
    async def no_traceback(request: Request, exc: Exception):  # never a stack trace in a response
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, status_code=500)

    def authorised(request: Request) -> None:
        if not settings.token:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), settings.token.encode()):
            raise HTTPException(401, "missing or wrong token (Authorization: Bearer ...)", headers={"WWW-Authenticate": "Bearer"})

    def pool() -> WorkerPool:
        return holder["pool"]

    def job_or_404(job_id: str) -> Job:
        job = store.get(job_id) if job_id.isalnum() else None
        if job is None:
            raise HTTPException(404, "no such analysis")
        return job

    @app.get("/healthz", response_model=Health)
    def healthz():
        return Health(status="ok", version=__version__, queued=pool().waiting() if "pool" in holder else 0)

    @app.post("/v1/analyses", status_code=202, response_model=JobCreated, dependencies=[Depends(authorised)])
    async def create_analysis(request: Request):
        if pool().waiting() >= settings.queue:
            raise HTTPException(429, "the queue is full: try again shortly", headers={"Retry-After": "10"})
        job_id = store.new_id()
        folder = root / job_id
        folder.mkdir(mode=0o700)
        try:
            upload = await receive_upload(request, folder, int(settings.max_upload_mb * 1024 * 1024))
            options = _options(upload.fields)
            await asyncio.to_thread(_check_media, Path(upload.path), upload.filename, settings.max_duration_s)
        except UploadTooLarge:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(413, f"the upload is larger than {settings.max_upload_mb:g} MB") from None
        except (BadUpload, ValueError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(422, str(exc)) from None
        job = store.add(Job(id=job_id, filename=upload.filename, options=options, folder=str(folder), upload=str(upload.path)))
        try:
            position = pool().submit(job.id)
        except QueueFull:
            store.remove(job.id)
            raise HTTPException(429, "the queue is full: try again shortly", headers={"Retry-After": "10"}) from None
        return JobCreated(id=job.id, status=job.status, queue_position=position, url=f"/v1/analyses/{job.id}")

    @app.get("/v1/analyses", response_model=list[JobSummary], dependencies=[Depends(authorised)])
    def recent(limit: int = 20):
        return [JobSummary(id=j.id, status=j.status, filename=j.filename, created=j.created,
                           label=(j.result or {}).get("label")) for j in store.recent(max(1, min(limit, 100)))]

    @app.get("/v1/analyses/{job_id}", response_model=JobView, dependencies=[Depends(authorised)])
    def get_analysis(job_id: str):
        return _view(job_or_404(job_id))

    @app.get("/v1/analyses/{job_id}/report", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    def get_report(job_id: str):
        job = job_or_404(job_id)
        report = Path(job.folder) / "report.html"
        if job.status != "done" or not report.is_file():
            raise HTTPException(404, "no report for this analysis (ask for one with report=true, and wait until done)")
        return HTMLResponse(report.read_text(encoding="utf-8"))

    @app.delete("/v1/analyses/{job_id}", status_code=204, dependencies=[Depends(authorised)])
    def delete_analysis(job_id: str):
        job = job_or_404(job_id)
        pool().cancel(job.id)
        store.remove(job.id)
        return Response(status_code=204)

    @app.get("/v1/models", response_model=ModelsView, dependencies=[Depends(authorised)])
    def models():
        voice, face = (settings.adaptation.get(k) for k in ("voice_profile", "face_profile"))
        return ModelsView(pipeline=_pipeline_models(), omni_backends=[], workers=settings.workers,
                          workers_ready=pool().ready, voice_adaptation=voice.describe() if voice else None,
                          face_adaptation=face.describe() if face else None)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(_render_page(bool(settings.token)))

    @app.get("/static/{name}")
    def static(name: str):
        if name not in ("app.js", "app.css"):
            raise HTTPException(404, "no such file")
        text = resources.files("omniemo.serve").joinpath("static", name).read_text(encoding="utf-8")
        return Response(text, media_type="text/javascript" if name.endswith(".js") else "text/css")

    app.state.store, app.state.settings, app.state.root = store, settings, root
    return app


def _options(fields: dict[str, str]) -> dict:
    """The form's options, validated as the CLI validates them."""
    from omniemo.labels import get_labelset
    from omniemo.perception.pipeline import parse_modalities, validate_fps

    labels = fields.get("labels", "dfew") or "dfew"
    get_labelset(labels)
    modalities = fields.get("modalities") or None
    if modalities:
        parse_modalities(modalities)

    def flag(name):
        return fields.get(name, "").strip().lower() in ("1", "true", "yes", "on")

    return {"labels": labels, "modalities": modalities, "fps": validate_fps(fields.get("fps") or 5.0),
            "report": flag("report"), "timeline": flag("timeline")}


def _check_media(path: Path, filename: str, max_duration: float) -> None:
    """Decode the headers: a file that is no media, or too long, is refused now, with the CLI's message."""
    from omniemo.media import MediaError, probe

    try:
        info = probe(path)
    except MediaError as exc:
        raise ValueError(f"{filename}: {exc.cause}") from None
    if info.duration > max_duration:
        raise ValueError(f"{filename}: {info.duration:.0f} s is longer than this server's limit of {max_duration:.0f} s")


def _pipeline_models() -> dict:
    from omniemo.perception import speech_emotion
    from omniemo.perception.expression import shipped_config
    from omniemo.perception.face import FACE_MODELS
    from omniemo.perception.words import WORDS_MODEL

    return {"backend": "pipeline", "face": FACE_MODELS, "expression": shipped_config().get("name"),
            "voice": speech_emotion.MODEL_NAME, "words": WORDS_MODEL}


def _expire(store: JobStore, ttl: float, stop: threading.Event) -> None:
    while not stop.wait(min(60.0, max(1.0, ttl / 4))):
        for job_id in store.older_than(ttl):
            store.remove(job_id)


def _render_page(token_required: bool) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from omniemo.labels import LABEL_SETS

    env = Environment(loader=PackageLoader("omniemo.serve", "templates"), autoescape=select_autoescape())
    return env.get_template("index.html").render(ai_act=AI_ACT_NOTE, label_sets=list(LABEL_SETS),
                                                 token_required=token_required, version=__version__,
                                                 now=int(time.time()))
