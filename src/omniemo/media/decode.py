"""Decode a clip: the planned video frames as RGB arrays and the audio as 16 kHz mono float32.

Memory stays bounded: video is decoded in order, seeking over long gaps, and only kept frames are
converted to arrays; audio is resampled chunk by chunk. A max-duration guard and a frame-memory budget
stop files that would not fit before any work is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from omniemo.media.errors import CorruptMediaError, MediaError, MediaTooLargeError
from omniemo.media.probe import MediaInfo, _probe_container, open_container
from omniemo.media.sampling import FrameSampling, HumanOmni, parse_sampling

SAMPLE_RATE = 16_000
DEFAULT_MAX_DURATION = 3 * 3600.0  # seconds; None disables the guard
DEFAULT_MAX_FRAME_BYTES = 2 * 1024**3
# Seek instead of decoding through a gap longer than this (seconds): decoding a skipped GOP costs more.
SEEK_GAP = 2.0


@dataclass
class Clip:
    """A decoded clip. ``frames`` is (T, H, W, 3) uint8 RGB; ``frame_times`` is seconds (NaN for padding)."""

    path: str
    info: MediaInfo
    frames: np.ndarray
    frame_times: np.ndarray
    audio: np.ndarray
    sample_rate: int = SAMPLE_RATE
    audio_start: float = 0.0
    sampling: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.info.duration

    @property
    def fps(self) -> float | None:
        return self.info.fps

    @property
    def width(self) -> int | None:
        return self.info.width

    @property
    def height(self) -> int | None:
        return self.info.height

    @property
    def has_video(self) -> bool:
        return self.info.has_video and len(self.frames) > 0

    @property
    def has_audio(self) -> bool:
        return self.info.has_audio and self.audio.size > 0

    @property
    def missing_modalities(self) -> list[str]:
        return [m for m, ok in (("video", self.has_video), ("audio", self.has_audio)) if not ok]

    @property
    def frame_is_padding(self) -> np.ndarray:
        return np.isnan(self.frame_times)

    def summary(self) -> dict:
        """Plain data about the clip (no arrays), for JSON output."""
        return {
            **self.info.to_dict(),
            "sampling": self.sampling,
            "frames_kept": int(len(self.frames)),
            "frame_times": [None if np.isnan(t) else round(float(t), 4) for t in self.frame_times],
            "audio_seconds": round(self.audio.size / self.sample_rate, 4),
            "missing_modalities": self.missing_modalities,
            "notes": list(self.notes),
        }


def load_clip(
    path: str | Path,
    sampling: str | FrameSampling | None = HumanOmni(),
    *,
    audio: bool = True,
    sample_rate: int = SAMPLE_RATE,
    max_side: int | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> Clip:
    """Decode ``path``. ``sampling=None`` skips video; ``audio=False`` skips audio.

    A file with only one of video/audio is not an error: ``clip.missing_modalities`` says which is absent.
    Raises a MediaError subclass (naming the file and the cause) when the file cannot be used.
    """
    path = Path(path)
    container, info = _open_checked(path, max_duration)
    notes = list(info.notes)
    strategy = parse_sampling(sampling) if sampling is not None else None
    frames = np.zeros((0, 0, 0, 3), np.uint8)
    times = np.zeros(0)
    try:
        if strategy is not None and info.has_video:
            frames, times = _decode_video(path, container, info, strategy, max_side, max_frame_bytes, notes)
    finally:
        container.close()

    samples = np.zeros(0, np.float32)
    if audio and info.has_audio:
        samples = _decode_audio(path, info, sample_rate, max_duration, notes)
    return Clip(
        path=str(path),
        info=info,
        frames=frames,
        frame_times=times,
        audio=samples,
        sample_rate=sample_rate,
        audio_start=info.audio_start,
        sampling=_describe(strategy),
        notes=notes,
    )


def _describe(strategy: FrameSampling | None) -> str:
    if strategy is None:
        return "none"
    arg = getattr(strategy, "n", None) or getattr(strategy, "fps", None)
    return f"{strategy.name}:{arg}"


def _open_checked(path: Path, max_duration: float | None):
    """(open container, MediaInfo), after the max-duration guard; the container is closed on any failure."""
    container = open_container(path)
    try:
        info = _probe_container(path, container)
        if max_duration is not None and info.duration > max_duration:
            raise MediaTooLargeError(
                path, f"duration {info.duration:.0f} s exceeds the limit of {max_duration:.0f} s (raise max_duration)")
    except av.error.FFmpegError as exc:
        container.close()
        raise CorruptMediaError(path, f"unreadable stream headers ({exc})") from exc
    except MediaError:
        container.close()
        raise
    return container, info


def _video_stream(container, info: MediaInfo):
    """The first video stream, threaded, and the time tolerance for matching frames (half a frame)."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream, (0.5 / info.fps if info.fps else 1e-3)


def _output_size(info: MediaInfo, max_side: int | None) -> tuple[int, int]:
    w, h = info.width or 0, info.height or 0
    if max_side and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = max(2, round(w * scale)), max(2, round(h * scale))
    return w, h


def _decode_video(path, container, info, strategy, max_side, max_frame_bytes, notes):
    plan = strategy.plan(info)
    out_w, out_h = _output_size(info, max_side)
    needed = (len(plan.times) + plan.pad_black) * out_w * out_h * 3
    if needed > max_frame_bytes:
        raise MediaTooLargeError(
            path,
            f"{len(plan.times)} frames of {out_w}x{out_h} need {needed / 2**30:.1f} GiB, over the "
            f"{max_frame_bytes / 2**30:.1f} GiB budget (lower the frame rate or set max_side)",
        )
    # One preallocated array (no list of frames to stack, which would double the peak), made at the first frame,
    # whose shape says whether a display rotation swapped width and height.
    frames = None
    times = np.full(len(plan.times) + plan.pad_black, np.nan)
    count = 0
    frames_at = _frames_at(container, *_video_stream(container, info), plan.times, notes, out_w, out_h)
    for count, (time, array) in enumerate(frames_at, 1):
        if frames is None:
            frames = np.zeros((len(times), *array.shape), np.uint8)
        frames[count - 1], times[count - 1] = array, time
    if count == 0:
        raise CorruptMediaError(path, "the video stream has no decodable frame")
    if count < len(plan.times):  # frames the stream did not have; keep only what was decoded
        frames = np.concatenate([frames[:count], frames[len(plan.times):]])
        times = np.concatenate([times[:count], times[len(plan.times):]])
    if plan.pad_black:
        notes.append(f"clip has {count} frames: padded with {plan.pad_black} black frames")
    return frames, times


def _frames_at(container, stream, tol, targets, notes, width, height):
    """Yield (time, RGB array) for each target time: the last frame shown at or before it (else the next).

    Frames are converted as soon as they are chosen, so no decoded frame is held longer than needed, and
    turned upright when the stream carries a rotation (a phone's display matrix). Targets past the end of the
    stream yield nothing: the plan stops where the decoded stream does, whatever the header promised.
    """
    frames = _timed(_decoding(container, stream, notes), stream)
    prev = pending = None  # (time, frame): the last frame at/before the target, the first frame after it
    last_chosen = array = None
    position = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    ended = False
    for target in targets:
        if not ended and target - position > SEEK_GAP and _seek(container, stream, target):
            frames = _timed(_decoding(container, stream, notes), stream)
            prev = pending = None
        while not ended:
            if pending is None:
                pending = next(frames, None)
                if pending is None:
                    ended = True
                    break
            position = pending[0]
            if pending[0] <= target + tol:
                prev, pending = pending, None
                continue
            break
        if ended and prev is not None and target > prev[0] + 2 * tol + 1e-6:
            notes.append(f"video ends at {prev[0]:.2f} s, before the frame planned at {target:.2f} s: "
                         "analysed up to its end")
            break  # past the last decoded frame: nothing more to show
        chosen = prev if prev is not None else pending
        if chosen is None:
            continue
        if chosen is not last_chosen:
            array = _upright(chosen[1], chosen[1].to_ndarray(width=width, height=height, format="rgb24"), notes)
            last_chosen = chosen
        yield chosen[0], array


def _timed(frames, stream):
    """(time, frame) pairs; a stream without timestamps (a raw .h264 file) is timed by frame count and rate."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    period = 1.0 / float(rate) if rate else 0.04
    last = None
    for frame in frames:
        t = float(frame.time) if frame.time is not None else (last + period if last is not None else 0.0)
        last = t
        yield t, frame


def _upright(frame, array: np.ndarray, notes: list[str]) -> np.ndarray:
    """Apply the frame's display rotation (counter-clockwise degrees, from the container's display matrix)."""
    turns = round((frame.rotation or 0) / 90) % 4
    if not turns:
        return array
    note = f"video rotated by {90 * turns} degrees for display (display matrix)"
    if note not in notes:
        notes.append(note)
    return np.ascontiguousarray(np.rot90(array, k=turns))


def iter_frames(
    path: str | Path,
    sampling: str | FrameSampling = "fps:5",
    *,
    max_side: int | None = 640,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    notes: list[str] | None = None,
):
    """Stream (time in s, RGB uint8 array) pairs of the planned frames, holding one frame at a time.

    For long files: memory does not grow with the clip. No black padding (that is a model-input concern).
    Raises a MediaError for an unusable file; yields nothing for a file without video.
    """
    path = Path(path)
    notes = notes if notes is not None else []
    container, info = _open_checked(path, max_duration)
    try:
        if not info.has_video:
            return
        plan = parse_sampling(sampling).plan(info)
        out_w, out_h = _output_size(info, max_side)
        yield from _frames_at(container, *_video_stream(container, info), plan.times, notes, out_w, out_h)
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(path, f"unreadable video ({exc})") from exc
    finally:
        container.close()


def _seek(container, stream, target: float) -> bool:
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        return True
    except (av.error.FFmpegError, OverflowError, ValueError):
        return False  # not seekable: keep decoding forward


def _decoding(container, stream, notes):
    """Frames of one stream; a decode error ends the stream with a note instead of a crash."""
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError as exc:
                notes.append(f"skipped an undecodable {stream.type} packet ({exc.strerror or exc})")
    except av.error.FFmpegError as exc:
        notes.append(f"{stream.type} decoding stopped early: {exc.strerror or exc}")


def _decode_audio(path, info, sample_rate, max_duration, notes) -> np.ndarray:
    track = _choose_audio_track(path, info, sample_rate, notes) if info.audio_tracks > 1 else 0
    samples = _decode_track(path, track, sample_rate, max_duration, notes)
    decoded = samples.size / sample_rate
    if info.duration > 1.0 and decoded < 0.9 * info.duration - 0.25:
        notes.append(f"audio decodes to {decoded:.2f} s but the header says {info.duration:.2f} s (truncated?)")
    if samples.size == 0:
        notes.append("audio stream has no decodable samples")
    return samples


def _decode_track(path, track: int, sample_rate: int, max_duration: float | None, notes: list[str],
                  seconds: float | None = None) -> np.ndarray:
    """One audio track as 16 kHz mono float32 (``seconds``: only its beginning).

    Stereo is mixed down here rather than by FFmpeg, so that a phase-inverted pair (left = -right, a miswired
    microphone), which would cancel to silence in the mix, is caught and one channel kept instead.
    """
    limit = int(max_duration * sample_rate) + sample_rate if max_duration is not None else None
    wanted = int(seconds * sample_rate) if seconds else None
    container = open_container(path)
    try:
        stream = container.streams.audio[track]
        stereo = stream.codec_context.channels == 2
        resampler = av.AudioResampler(format="fltp" if stereo else "flt", layout="stereo" if stereo else "mono",
                                      rate=sample_rate)
        chunks, total = [], 0
        for frame in _decoding(container, stream, notes):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(2 if stereo else 1, -1)
                chunks.append(chunk)
                total += chunk.shape[1]
            if limit is not None and total > limit:
                raise MediaTooLargeError(path, f"audio runs past the limit of {max_duration:.0f} s")
            if wanted is not None and total >= wanted:
                break
        else:
            chunks += [out.to_ndarray().reshape(2 if stereo else 1, -1) for out in resampler.resample(None)]
    finally:
        container.close()
    channels = np.concatenate(chunks, axis=1).astype(np.float32, copy=False) if chunks else np.zeros((1, 0), np.float32)
    channels = _finite(channels, notes)
    return _downmix(channels, notes) if len(channels) == 2 else channels[0]


def _finite(channels: np.ndarray, notes: list[str]) -> np.ndarray:
    bad = ~np.isfinite(channels)
    if bad.any():
        notes.append(f"audio has {int(bad.sum())} non-finite samples (NaN or infinity), set to silence")
        channels = np.where(bad, 0.0, channels).astype(np.float32)
    return channels


def _downmix(stereo: np.ndarray, notes: list[str]) -> np.ndarray:
    left, right = stereo
    mix = (left + right) / 2
    channel_power = (float(np.mean(left.astype(np.float64) ** 2)) + float(np.mean(right.astype(np.float64) ** 2))) / 2
    if channel_power > 1e-8 and float(np.mean(mix.astype(np.float64) ** 2)) < 0.05 * channel_power:
        correlation = float(np.corrcoef(left, right)[0, 1]) if left.std() > 0 and right.std() > 0 else 0.0
        if correlation < -0.5:
            notes.append(f"stereo channels are phase-inverted (correlation {correlation:.2f}): their mix cancels, "
                         "so the left channel alone is used")
            return np.ascontiguousarray(left)
    return mix


def _choose_audio_track(path, info, sample_rate, notes) -> int:
    """Several audio tracks: the default one if it is not silent, else the loudest (judged on the first minute)."""
    container = open_container(path)
    try:
        default = [i for i, s in enumerate(container.streams.audio) if s.disposition & av.stream.Disposition.default]
    finally:
        container.close()
    loudness = []
    for track in range(info.audio_tracks):
        piece = _decode_track(path, track, sample_rate, None, [], seconds=60.0)
        loudness.append(float(np.sqrt(np.mean(piece.astype(np.float64) ** 2))) if piece.size else 0.0)
    audible = [i for i, rms in enumerate(loudness) if rms > 1e-3]
    chosen = next((i for i in default if i in audible), None)
    why = "the default track"
    if chosen is None:
        chosen, why = int(np.argmax(loudness)), "the loudest"
    levels = ", ".join(f"{20 * np.log10(max(rms, 1e-9)):.0f} dBFS" for rms in loudness)
    notes.append(f"audio track {chosen + 1} of {info.audio_tracks} used ({why}; levels {levels})")
    return chosen
