"""Synthetic clips for tests, benchmarks and the demo: nothing from a dataset, every byte made here.

Each video frame carries its own index as a row of black/white squares (``read_frame_index`` reads it
back), so tests can check exactly which frames a sampler returned, through lossy codecs.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# extension -> (container format, video codec, audio codec)
_FORMATS = {
    ".mp4": ("mp4", "libx264", "aac"),
    ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "flac"),
    ".webm": ("webm", "libvpx", "libopus"),
    ".avi": ("avi", "mjpeg", "libmp3lame"),
    ".flv": ("flv", "flv", "libmp3lame"),
    ".wav": ("wav", None, "pcm_s16le"),
    ".mp3": ("mp3", None, "libmp3lame"),
    ".flac": ("flac", None, "flac"),
    ".ogg": ("ogg", None, "libopus"),
    ".m4a": ("mp4", None, "aac"),
}
INDEX_BITS = 12
# Rates a container/codec insists on (FLV's mp3 takes 44.1/22.05/11.025 kHz only; Opus 48 kHz).
_AUDIO_RATES = {"libopus": 48_000, "flv": 22_050}


def _index_pattern(frame: np.ndarray, index: int) -> None:
    h, w = frame.shape[:2]
    cell = max(4, min(w // INDEX_BITS, h // 4))
    for bit in range(INDEX_BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[:cell, bit * cell:(bit + 1) * cell] = value


def read_frame_index(frame: np.ndarray) -> int:
    """The index a synthetic frame was drawn with."""
    h, w = frame.shape[:2]
    cell = max(4, min(w // INDEX_BITS, h // 4))
    index = 0
    for bit in range(INDEX_BITS):
        patch = frame[cell // 4:cell - cell // 4, bit * cell + cell // 4:(bit + 1) * cell - cell // 4]
        if patch.mean() > 127:
            index |= 1 << bit
    return index


def _frame(index: int, width: int, height: int, fps: float) -> np.ndarray:
    t = index / fps
    frame = np.empty((height, width, 3), np.uint8)
    frame[...] = (40, 90 + int(60 * np.sin(t)), 140)
    # A moving disc, so the picture changes like a real scene and encoders do real work.
    radius = max(2, int(min(width, height) * 0.15))
    cx = int(width * (0.5 + 0.3 * np.sin(2 * np.pi * t / 5)))
    cy = int(height * 0.6)
    y0, y1 = max(0, cy - radius), min(height, cy + radius)
    x0, x1 = max(0, cx - radius), min(width, cx + radius)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
    frame[y0:y1, x0:x1][disc] = (230, 200, 60)
    _index_pattern(frame, index)
    return frame


def _tone(start: int, count: int, rate: int, silent: bool) -> np.ndarray:
    if silent:
        return np.zeros(count, np.float32)
    t = (start + np.arange(count)) / rate
    # A voiced-like harmonic tone with a slow pitch glide and syllable-rate loudness changes.
    f0 = 180 + 40 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 5))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * envelope * wave).astype(np.float32)


def write_clip(
    path: str | Path,
    duration: float = 2.0,
    *,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    video: bool = True,
    audio: bool = True,
    silent: bool = False,
    sample_rate: int = 16_000,
    gop_seconds: float = 2.0,
) -> Path:
    """Write a synthetic clip; the container and codecs follow the extension (.mp4, .webm, .wav, ...).

    Streams are written frame by frame, so long high-resolution clips need little memory.
    """
    path = Path(path)
    fmt, vcodec, acodec = _FORMATS[path.suffix.lower()]
    video = video and vcodec is not None
    if not video and not audio:
        raise ValueError("a clip needs video, audio or both")
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format=fmt) as container:
        vstream = astream = None
        if video:
            vstream = container.add_stream(vcodec, rate=rate)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            vstream.gop_size = max(1, round(fps * gop_seconds))
            if vcodec == "libx264":
                vstream.options = {"preset": "ultrafast", "crf": "20"}
            elif vcodec == "mjpeg":
                vstream.pix_fmt = "yuvj420p"
        if audio:
            arate = _AUDIO_RATES.get(fmt, _AUDIO_RATES.get(acodec, sample_rate))
            astream = container.add_stream(acodec, rate=arate)
            astream.layout = "mono"
        n_frames = max(1, round(duration * fps)) if video else 0
        chunk = int(round(arate / fps)) if audio and video else (arate // 10 if audio else 0)
        total_samples = int(round(duration * arate)) if audio else 0
        written = 0
        steps = max(n_frames, -(-total_samples // chunk) if chunk else 0)
        for i in range(steps):
            if vstream is not None and i < n_frames:
                frame = av.VideoFrame.from_ndarray(_frame(i, width, height, fps), format="rgb24")
                frame.pts = i
                container.mux(vstream.encode(frame))
            if astream is not None and written < total_samples:
                count = min(chunk, total_samples - written)
                samples = _tone(written, count, arate, silent)
                aframe = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
                aframe.sample_rate = arate
                aframe.pts = written
                container.mux(astream.encode(aframe))
                written += count
        for stream in (vstream, astream):
            if stream is not None:
                container.mux(stream.encode(None))
    return path


def write_frames(path: str | Path, frames, fps: float, *, audio=None, sample_rate: int = 16_000, crf: int = 18,
                 rotation: int = 0) -> Path:
    """Encode given RGB frames (an iterable of equal-size arrays, or None for audio only) to H.264 + AAC.

    ``audio``: one track or a list of tracks, each (n,) mono or (2, n) stereo float32. ``rotation``: a display
    rotation in degrees (counter-clockwise), as a phone writes it. The container follows the extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tracks = [] if audio is None else [np.atleast_2d(np.asarray(t, np.float32)) for t in (audio if isinstance(audio, list) else [audio])]
    frames = iter(frames) if frames is not None else None
    first = next(frames) if frames is not None else None
    with av.open(str(path), mode="w") as container:
        vstream = None
        if first is not None:
            height, width = first.shape[:2]
            vstream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vstream.width, vstream.height, vstream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
            vstream.options = {"preset": "ultrafast", "crf": str(crf)}
            if rotation:
                vstream.set_display_rotation(rotation)
        astreams = []
        for track in tracks:  # every stream must exist before the first packet is written
            astream = container.add_stream("aac" if path.suffix.lower() not in (".wav",) else "pcm_f32le", rate=sample_rate)
            astream.layout = "stereo" if len(track) == 2 else "mono"
            astreams.append(astream)
        if vstream is not None:
            for index, frame in enumerate(_chain(first, frames)):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: vstream.height, : vstream.width]), format="rgb24")
                vf.pts = index
                container.mux(vstream.encode(vf))
            container.mux(vstream.encode(None))
        step = sample_rate // 10
        for astream, track in zip(astreams, tracks):
            layout = "stereo" if len(track) == 2 else "mono"
            for start in range(0, track.shape[1], step):
                chunk = np.ascontiguousarray(track[:, start:start + step])
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                aframe.sample_rate, aframe.pts = sample_rate, start
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))
    return path


def _chain(first, rest):
    yield first
    yield from rest


DEMO_SENTENCE = "What a wonderful surprise! I am so happy to see you all here today."


def demo_face() -> np.ndarray:
    """A real portrait that ships inside an installed wheel: scikit-image's astronaut.png (Eileen Collins,
    NASA, public domain). Read as a file, without importing scikit-image."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the demo portrait comes from the scikit-image wheel, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png"
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def spoken(text: str, sample_rate: int = 16_000) -> np.ndarray | None:
    """Speech from espeak-ng when it is installed (Debian: apt-get install espeak-ng); None otherwise."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
        from omniemo.media.decode import load_clip

        return load_clip(wav, sampling=None, sample_rate=sample_rate).audio


def write_demo_clip(path: str | Path, seconds: float = 6.0, fps: float = 25.0) -> Path:
    """The demo clip: the portrait with a slow zoom, and a spoken sentence (or a tone without espeak-ng)."""
    import cv2

    face = demo_face()
    h, w = face.shape[:2]
    speech = spoken(DEMO_SENTENCE)
    audio = np.zeros(int(seconds * 16_000), np.float32)
    if speech is not None:
        speech = speech[: audio.size - 8_000]
        audio[8_000:8_000 + speech.size] = speech  # half a second of quiet first
    else:
        audio = _tone(0, audio.size, 16_000, silent=False)

    def frames():
        for i in range(int(seconds * fps)):
            zoom = 1.0 + 0.08 * i / (seconds * fps)  # a slow push-in, so frames differ like real video
            cw, ch = int(w / zoom), int(h / zoom)
            x0, y0 = (w - cw) // 2, max(0, (h - ch) // 3)
            yield cv2.resize(face[y0:y0 + ch, x0:x0 + cw], (480, 480), interpolation=cv2.INTER_AREA)

    return write_frames(path, frames(), fps, audio=audio)
