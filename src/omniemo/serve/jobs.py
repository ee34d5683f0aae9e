"""Analysis jobs: a store (SQLite, in memory or in a file for restarts) and worker processes that load the
models once and run one clip at a time, behind a bounded queue.

Each worker has its own task queue, so the server always knows which job a worker holds: a worker that dies
mid-job (a crash in a native library, the out-of-memory killer) fails that job, with a message, and is
restarted. Workers exit with the server (``omniemo.workers.die_with_parent``).
"""

from __future__ import annotations

import collections
import importlib
import json
import multiprocessing
import queue
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("queued", "running", "done", "failed")


class QueueFull(Exception):
    """More jobs waiting than the queue holds (the API answers 429 with Retry-After)."""


@dataclass
class Job:
    id: str
    filename: str
    options: dict
    folder: str  # server-side: the upload and the report; never sent to a client
    upload: str
    status: str = "queued"
    progress: float = 0.0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    result: dict | None = None
    error: str | None = None


class JobStore:
    """Jobs in SQLite: ``path=None`` keeps them in memory (capped at ``cap``, oldest finished dropped first)."""

    COLUMNS = ("id", "filename", "options", "folder", "upload", "status", "progress", "created", "updated", "result", "error")

    def __init__(self, path: str | Path | None = None, cap: int = 200):
        self.cap = cap
        self.lock = threading.Lock()
        self.db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, filename TEXT, options TEXT, folder TEXT, "
                        "upload TEXT, status TEXT, progress REAL, created REAL, updated REAL, result TEXT, error TEXT)")
        self.db.commit()

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def add(self, job: Job) -> Job:
        with self.lock:
            self.db.execute(f"INSERT INTO jobs VALUES ({','.join('?' * len(self.COLUMNS))})", self._row(job))
            self.db.commit()
        self._enforce_cap()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            row = self.db.execute(f"SELECT {','.join(self.COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def update(self, job_id: str, **changes) -> None:
        changes["updated"] = time.time()
        if "result" in changes:
            changes["result"] = json.dumps(changes["result"]) if changes["result"] is not None else None
        assignments = ", ".join(f"{k} = ?" for k in changes)
        with self.lock:
            self.db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*changes.values(), job_id))
            self.db.commit()

    def recent(self, limit: int = 20) -> list[Job]:
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(self.COLUMNS)} FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

    def remove(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None:
            with self.lock:
                self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
                self.db.commit()
            shutil.rmtree(job.folder, ignore_errors=True)
        return job

    def older_than(self, seconds: float) -> list[str]:
        with self.lock:
            rows = self.db.execute("SELECT id FROM jobs WHERE updated < ? AND status IN ('done', 'failed')",
                                   (time.time() - seconds,)).fetchall()
        return [r[0] for r in rows]

    def unfinished(self) -> list[Job]:
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(self.COLUMNS)} FROM jobs WHERE status IN ('queued', 'running')").fetchall()
        return [self._job(r) for r in rows]

    def _enforce_cap(self) -> None:
        with self.lock:
            extra = self.db.execute("SELECT id FROM jobs WHERE status IN ('done', 'failed') ORDER BY created DESC "
                                    "LIMIT -1 OFFSET ?", (self.cap,)).fetchall()
        for (job_id,) in extra:
            self.remove(job_id)

    def _row(self, job: Job) -> tuple:
        return (job.id, job.filename, json.dumps(job.options), job.folder, job.upload, job.status, job.progress,
                job.created, job.updated, json.dumps(job.result) if job.result is not None else None, job.error)

    def _job(self, row) -> Job:
        values = dict(zip(self.COLUMNS, row))
        values["options"] = json.loads(values["options"])
        values["result"] = json.loads(values["result"]) if values["result"] else None
        return Job(**values)


# --- the worker processes ---------------------------------------------------------------------------------

def pipeline_predictor(options: dict, adaptation: dict | None = None):
    """The predictor a job runs with: the CPU cue pipeline (reading the voice and the face against the server's
    ``adaptation``, its ``voice_profile`` and ``face_profile``, if any), or an omni backend (``backend`` + its
    options)."""
    from omniemo.predictor import get_predictor

    backend = options.get("backend", "pipeline")
    if backend == "pipeline":
        return get_predictor("pipeline", fps=options.get("fps", 5.0), modalities=options.get("modalities"),
                             timeline=bool(options.get("timeline")), keep_keyframes=bool(options.get("report")),
                             **(adaptation or {}))
    return get_predictor(backend, **options.get("backend_options", {}))


def load_factory(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def warm_up() -> None:
    """Load the pipeline's models before the first job (each worker once)."""
    from omniemo.perception import speech_emotion
    from omniemo.perception.expression import ExpressionModel
    from omniemo.perception.models import whisper_encoder, whisper_model

    whisper_model()
    whisper_encoder(speech_emotion.ENCODER)
    speech_emotion.default_model()
    ExpressionModel()


def worker_main(index: int, tasks, results, factory_spec: str, warm: bool, adaptation: dict | None = None) -> None:
    from omniemo.media import MediaError
    from omniemo.perception.models import quiet_native_stderr
    from omniemo.workers import die_with_parent

    die_with_parent()
    factory = load_factory(factory_spec)
    cache: dict[str, object] = {}  # predictors by options (an omni backend loads its checkpoint once)
    with quiet_native_stderr():
        if warm:
            warm_up()
        results.put(("ready", index, None, None))
        while True:
            task = tasks.get()
            if task is None:
                return
            job_id, path, options, folder, filename = task
            key = json.dumps({k: v for k, v in options.items() if k != "labels"}, sort_keys=True)
            last = [0.0]

            def progress(done, total, job_id=job_id, last=last):
                fraction = min(1.0, done / total) if total else 0.0
                if fraction - last[0] >= 0.02:
                    last[0] = fraction
                    results.put(("progress", index, job_id, fraction))

            try:
                predictor = cache.get(key)
                if predictor is None:
                    predictor = cache[key] = factory(options, adaptation)
                predictor.progress = progress
                prediction = predictor.predict(path, options.get("labels", "dfew"))
                result = prediction.to_dict()
                result["path"] = filename  # the client's name for the clip, never the server's path
                if options.get("report") and prediction.evidence is not None:
                    from omniemo.report import write_report

                    prediction.path = filename
                    write_report(prediction, Path(folder) / "report.html")
                results.put(("done", index, job_id, json.dumps(result)))
            except (MediaError, ValueError) as exc:
                results.put(("failed", index, job_id, str(exc).replace(str(path), filename)))
            except Exception as exc:  # never a stack trace to a client: the kind of failure, on one line
                results.put(("failed", index, job_id, f"analysis failed ({type(exc).__name__})"))
            results.put(("ready", index, None, None))


class WorkerPool:
    """``workers`` processes behind a queue of at most ``queue_size`` waiting jobs."""

    def __init__(self, store: JobStore, workers: int = 1, queue_size: int = 8,
                 factory: str = "omniemo.serve.jobs:pipeline_predictor", warm: bool = True, adaptation: dict | None = None):
        self.store, self.queue_size, self.factory, self.warm = store, queue_size, factory, warm
        self.adaptation = adaptation  # pickled to each worker process once, at its start
        self.context = multiprocessing.get_context("spawn")
        self.results = self.context.Queue()
        self.pending: collections.deque[str] = collections.deque()
        self.lock = threading.Lock()
        self.workers: list[dict] = [self._start(i) for i in range(workers)]
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="omniemo-dispatch", daemon=True)
        self.thread.start()

    def _start(self, index: int) -> dict:
        tasks = self.context.Queue(maxsize=1)
        process = self.context.Process(target=worker_main,
                                       args=(index, tasks, self.results, self.factory, self.warm, self.adaptation),
                                       daemon=True, name=f"omniemo-worker-{index}")
        process.start()
        return {"process": process, "tasks": tasks, "job": None, "ready": False}

    @property
    def ready(self) -> int:
        return sum(w["ready"] or w["job"] is not None for w in self.workers)

    def submit(self, job_id: str) -> int:
        """Queue a job; its position in the queue (0: next). Raises QueueFull."""
        with self.lock:
            if len(self.pending) >= self.queue_size:
                raise QueueFull()
            self.pending.append(job_id)
            return len(self.pending) - 1

    def cancel(self, job_id: str) -> None:
        with self.lock:
            if job_id in self.pending:
                self.pending.remove(job_id)

    def waiting(self) -> int:
        return len(self.pending)

    def _run(self) -> None:
        while not self.stopping:
            self._dispatch()
            try:
                kind, index, job_id, payload = self.results.get(timeout=0.2)
            except queue.Empty:
                self._check_workers()
                continue
            except Exception:  # a message cut short by a worker that died while sending it
                self._check_workers()
                continue
            worker = self.workers[index]
            if kind == "ready":
                worker["ready"], worker["job"] = True, None
            elif kind == "progress" and self.store.get(job_id):
                self.store.update(job_id, progress=round(payload, 3))
            elif kind in ("done", "failed") and self.store.get(job_id):
                if kind == "done":
                    self.store.update(job_id, status="done", progress=1.0, result=json.loads(payload))
                else:
                    self.store.update(job_id, status="failed", error=payload)
            self._check_workers()

    def _dispatch(self) -> None:
        with self.lock:
            for worker in self.workers:
                if not self.pending:
                    return
                if worker["ready"] and worker["job"] is None:
                    job = self.store.get(self.pending.popleft())
                    if job is None:  # deleted while it waited
                        continue
                    worker["ready"], worker["job"] = False, job.id
                    self.store.update(job.id, status="running")
                    worker["tasks"].put((job.id, job.upload, job.options, job.folder, job.filename))

    def _check_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if self.stopping or worker["process"].is_alive():
                continue
            code = worker["process"].exitcode
            if worker["job"] and self.store.get(worker["job"]):
                self.store.update(worker["job"], status="failed",
                                  error=f"the analysis crashed its worker process (exit code {code}); the worker was restarted")
            self.workers[index] = self._start(index)

    def close(self, timeout: float = 5.0) -> None:
        self.stopping = True
        for worker in self.workers:
            try:
                worker["tasks"].put_nowait(None)
            except queue.Full:
                pass
        deadline = time.time() + timeout
        for worker in self.workers:
            worker["process"].join(max(0.0, deadline - time.time()))
            if worker["process"].is_alive():
                worker["process"].kill()
        self.thread.join(timeout=2.0)
