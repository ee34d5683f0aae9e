"""Media facts from the container headers, without decoding any frame."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from omniemo.media.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaNotFoundError,
    NoMediaStreamsError,
)


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds. Times in seconds; ``num_frames`` is estimated when the container does not say."""

    path: str
    size_bytes: int
    container: str
    duration: float
    has_video: bool
    has_audio: bool
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    num_frames: int | None = None
    num_frames_exact: bool = False
    video_start: float = 0.0
    video_duration: float | None = None  # the video stream's own length, when it differs from the container's
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    audio_start: float = 0.0
    audio_tracks: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def missing_modalities(self) -> list[str]:
        return [m for m, present in (("video", self.has_video), ("audio", self.has_audio)) if not present]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["missing_modalities"] = self.missing_modalities
        return d


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a file for reading, turning every failure into a MediaError that names the file."""
    path = Path(path)
    if not path.exists():
        raise MediaNotFoundError(path, "no such file")
    if not path.is_file():
        raise CorruptMediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyMediaError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(path, f"not a readable media file ({_ffmpeg_reason(exc)})") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptMediaError(path, f"cannot open ({exc})") from exc


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _stream_seconds(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _start_seconds(stream) -> float:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _probe_container(path: Path, container) -> MediaInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise NoMediaStreamsError(path, "the file has neither a video nor an audio stream")

    notes: list[str] = []
    durations = [d for d in (_stream_seconds(s) for s in (video, audio) if s is not None) if d]
    counted_frames = None
    if container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
    elif durations:
        duration = max(durations)
    else:  # a raw elementary stream (.h264, .aac): measure it by reading its packets (no decoding)
        duration, counted_frames = _count_duration(path, video is not None)
        if counted_frames != 1 or audio is not None:  # a photograph has no duration to miss
            notes.append(f"container states no duration: {duration:.2f} s measured from its packets"
                         if duration else "container states no duration")

    info: dict = {}
    if video is not None:
        rate = video.average_rate or video.guessed_rate or video.base_rate
        fps = float(rate) if rate else None
        v_dur = _stream_seconds(video) or duration
        if counted_frames:
            num_frames, exact = counted_frames, True
        elif video.frames and video.frames > 0:
            num_frames, exact = int(video.frames), True
        elif fps:
            num_frames, exact = max(1, round(v_dur * fps)), False
        else:
            num_frames, exact = None, False
        ctx = video.codec_context
        info.update(
            video_codec=ctx.name if ctx else None,
            width=ctx.width if ctx else None,
            height=ctx.height if ctx else None,
            fps=fps,
            num_frames=num_frames,
            num_frames_exact=exact,
            video_start=_start_seconds(video),
            video_duration=_stream_seconds(video) or (counted_frames / fps if counted_frames and fps else None),
        )
    if audio is not None:
        ctx = audio.codec_context
        info.update(
            audio_codec=ctx.name if ctx else None,
            sample_rate=ctx.sample_rate if ctx else None,
            channels=ctx.channels if ctx else None,
            audio_start=_start_seconds(audio),
            audio_tracks=len(container.streams.audio),
        )
    return MediaInfo(
        path=str(path),
        size_bytes=os.path.getsize(path),
        container=container.format.name,
        duration=float(duration),
        has_video=video is not None,
        has_audio=audio is not None,
        notes=notes,
        **info,
    )


def _count_duration(path: Path, video: bool) -> tuple[float, int | None]:
    """(seconds, video frames) of a file whose container states no length, from its packets. Its own container:
    such streams cannot seek back for the decoding that follows."""
    frames, seconds = 0, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if video else container.streams.audio[0]
        rate = (stream.average_rate or stream.guessed_rate or stream.base_rate) if video else None
        for packet in container.demux(stream):
            if packet.size:
                frames += 1
                if packet.duration and packet.time_base:
                    seconds += float(packet.duration * packet.time_base)
    if video:
        return (frames / float(rate) if rate else seconds), frames or None
    return seconds, None


def probe(path: str | Path) -> MediaInfo:
    """Read a file's media facts. Raises a MediaError subclass naming the file and the cause."""
    path = Path(path)
    container = open_container(path)
    try:
        return _probe_container(path, container)
    except MediaError:
        raise
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(path, f"unreadable stream headers ({_ffmpeg_reason(exc)})") from exc
    finally:
        container.close()
