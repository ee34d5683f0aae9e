import numpy as np
import pytest

from omniemo import load_clip, probe
from omniemo.media import (
    CorruptMediaError,
    EmptyMediaError,
    FixedRate,
    HumanOmni,
    MediaError,
    MediaNotFoundError,
    MediaTooLargeError,
    NoMediaStreamsError,
    Uniform,
    parse_sampling,
)
from omniemo.media.synth import read_frame_index, write_clip

AV_FORMATS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".flv")
AUDIO_FORMATS = (".wav", ".mp3", ".flac", ".ogg", ".m4a")


# --- real media -----------------------------------------------------------------------------------------

def test_every_crema_d_sample_decodes(crema_samples):
    files = sorted(crema_samples.glob("*.flv")) + sorted(crema_samples.glob("*.mp3"))
    assert len(files) == 12
    for path in files:
        clip = load_clip(path)
        assert clip.has_audio and clip.sample_rate == 16_000 and clip.audio.dtype == np.float32
        assert abs(clip.audio.size / 16_000 - clip.duration) < 0.15, path
        assert 0 < np.abs(clip.audio).max() <= 1.0
        if path.suffix == ".flv":
            assert clip.has_video and clip.missing_modalities == []
            assert clip.frames.shape == (8, 360, 480, 3) and clip.frames.dtype == np.uint8
            assert (clip.width, clip.height) == (480, 360) and 29 < clip.fps < 31
            assert np.all(np.diff(clip.frame_times) > 0) and clip.frames.mean() > 20  # a real picture, in order
        else:
            assert clip.missing_modalities == ["video"] and len(clip.frames) == 0


def test_ravdess_sample_decodes(ravdess_speech):
    files = sorted(ravdess_speech.glob("*.flac"))
    assert len(files) == 1439
    for path in files[::72]:  # 20 files across actors and emotions
        info = probe(path)
        clip = load_clip(path)
        assert info.sample_rate == 16_000 and info.channels == 1
        assert clip.missing_modalities == ["video"]
        assert abs(clip.audio.size / 16_000 - info.duration) < 0.01
        assert clip.audio.std() > 1e-4


# --- generated media: every container, exact frame choice -----------------------------------------------

@pytest.mark.parametrize("ext", AV_FORMATS)
def test_audio_video_containers(clips, ext):
    clip = load_clip(clips[ext], Uniform(5))
    assert clip.missing_modalities == []
    assert clip.frames.shape == (5, 120, 160, 3)
    assert abs(clip.audio.size / 16_000 - 2.0) < 0.12
    indices = [read_frame_index(f) for f in clip.frames]
    assert indices == sorted(indices) and len(set(indices)) == 5
    if ext != ".avi":  # the AVI muxer inserts empty chunks for audio sync; times still hold
        assert indices == [5, 15, 25, 35, 45]


@pytest.mark.parametrize("ext", AUDIO_FORMATS)
def test_audio_containers(clips, ext):
    clip = load_clip(clips[ext])
    assert clip.missing_modalities == ["video"]
    assert abs(clip.audio.size / 16_000 - 2.0) < 0.06
    # the synthetic tone has its energy at 140-220 Hz; resampling must keep it there
    spectrum = np.abs(np.fft.rfft(clip.audio))
    peak_hz = np.argmax(spectrum) * 16_000 / clip.audio.size
    assert 100 < peak_hz < 260


def test_humanomni_sampling_matches_reference_formula(clips):
    clip = load_clip(clips[".mp4"], HumanOmni())
    n = 50
    seg = (n - 1) / 8
    expected = [int(np.round(seg * (i + 0.5) + 1e-6)) for i in range(8)]
    assert [read_frame_index(f) for f in clip.frames] == expected
    assert clip.sampling == "humanomni:8"


def test_humanomni_pads_short_clips_with_black_frames(clips):
    clip = load_clip(clips["short"], "humanomni")
    assert len(clip.frames) == 8
    assert [read_frame_index(f) for f in clip.frames[:5]] == [0, 1, 2, 3, 4]
    assert clip.frame_is_padding.tolist() == [False] * 5 + [True] * 3
    assert clip.frames[5:].max() == 0
    assert any("padded" in note for note in clip.notes)


def test_fixed_rate_sampling(clips):
    clip = load_clip(clips[".mp4"], FixedRate(5))
    assert len(clip.frames) == 10
    assert [read_frame_index(f) for f in clip.frames] == list(range(0, 50, 5))
    np.testing.assert_allclose(clip.frame_times, np.arange(10) / 5, atol=1e-6)


def test_parse_sampling():
    assert parse_sampling("humanomni") == HumanOmni(8)
    assert parse_sampling("uniform:4") == Uniform(4)
    assert parse_sampling("fps:0.5") == FixedRate(0.5)
    for bad in ("fps:0", "uniform:0", "uniform:x", "every-frame"):
        with pytest.raises(ValueError):
            parse_sampling(bad)


def test_long_clip_seeks_to_exact_frames(tmp_path):
    path = write_clip(tmp_path / "long.mp4", 120.0, fps=10, size=(96, 64), audio=False)
    clip = load_clip(path, Uniform(6))
    assert [read_frame_index(f) for f in clip.frames] == [100, 300, 500, 700, 900, 1100]
    sparse = load_clip(path, FixedRate(0.1))
    assert [read_frame_index(f) for f in sparse.frames] == list(range(0, 1200, 100))


def test_max_side_scales_frames(clips):
    clip = load_clip(clips[".mp4"], Uniform(2), max_side=80)
    assert clip.frames.shape == (2, 60, 80, 3)


# --- missing modalities are results, not errors -----------------------------------------------------------

def test_video_without_audio(clips):
    clip = load_clip(clips["video_only"])
    assert clip.missing_modalities == ["audio"] and clip.frames.shape[0] == 8 and clip.audio.size == 0


def test_audio_only_and_skipping_streams(clips):
    assert load_clip(clips[".wav"]).missing_modalities == ["video"]
    no_video = load_clip(clips[".mp4"], sampling=None)
    assert len(no_video.frames) == 0 and no_video.has_audio
    no_audio = load_clip(clips[".mp4"], audio=False)
    assert no_audio.audio.size == 0 and no_audio.has_video


def test_silent_track_is_audio_not_missing(clips):
    clip = load_clip(clips["silent"])
    assert clip.has_audio and np.abs(clip.audio).max() < 1e-3


# --- errors name the file and the cause -------------------------------------------------------------------

def _raises(exc_type, path, *words):
    with pytest.raises(exc_type) as info:
        load_clip(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert isinstance(info.value, MediaError) and info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path):
    _raises(MediaNotFoundError, tmp_path / "nope.mp4", "no such file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _raises(EmptyMediaError, path, "empty")


def test_not_media(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 50)
    _raises(CorruptMediaError, path, "not a readable media file")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mkv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    _raises(CorruptMediaError, path)


def test_directory(tmp_path):
    _raises(CorruptMediaError, tmp_path, "not a regular file")


def test_truncated_mp4_is_corrupt(clips, tmp_path):
    data = clips[".mp4"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    _raises(CorruptMediaError, path)


def test_truncated_streamable_file_decodes_what_is_there(tmp_path):
    full = write_clip(tmp_path / "full.mkv", 4.0, size=(160, 120))
    data = full.read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) // 2])
    clip = load_clip(path, FixedRate(2))
    assert clip.has_video and 2 <= len(clip.frames) < 8  # what is there, never the last frame repeated
    assert len(set(clip.frame_times.tolist())) == len(clip.frames)
    assert any("analysed up to its end" in n for n in clip.notes)
    assert clip.audio.size / 16_000 < 3.9


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_truncated_audio_decodes_what_is_there(tmp_path, ext):
    full = write_clip(tmp_path / f"full{ext}", 4.0)
    data = full.read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 3])
    clip = load_clip(path)
    assert 0.5 < clip.audio.size / 16_000 < 2.0
    if ext == ".flac":  # its header states the full length, so the shortfall is reported
        assert any("truncated" in note for note in clip.notes)


def test_no_audio_or_video_stream(tmp_path):
    path = tmp_path / "subtitles.srt"
    path.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    _raises(NoMediaStreamsError, path, "neither a video nor an audio stream")


def test_max_duration_guard(clips):
    with pytest.raises(MediaTooLargeError, match="exceeds the limit"):
        load_clip(clips[".mp4"], max_duration=1.0)


def test_frame_memory_budget(clips):
    with pytest.raises(MediaTooLargeError, match="budget"):
        load_clip(clips[".mp4"], FixedRate(25), max_frame_bytes=100_000)


def test_probe_reports_streams(clips):
    info = probe(clips[".mp4"])
    assert info.has_video and info.has_audio and info.num_frames == 50 and info.num_frames_exact
    assert (info.width, info.height) == (160, 120) and info.fps == 25
    assert probe(clips[".wav"]).missing_modalities == ["video"]


def test_iter_frames_streams_the_planned_frames(tmp_path):
    from omniemo.media import iter_frames

    path = write_clip(tmp_path / "stream.mp4", 30.0, fps=10, size=(96, 64), audio=False)
    got = [(t, read_frame_index(f)) for t, f in iter_frames(path, "fps:1", max_side=None)]
    assert [i for _, i in got] == list(range(0, 300, 10))
    assert [round(t, 3) for t, _ in got] == [float(i) for i in range(30)]
    assert list(iter_frames(write_clip(tmp_path / "a.wav", 1.0))) == []


# --- recordings that fooled the decoder (issue 15) ---------------------------------------------------------

def _tone(seconds=2.0, hz=180.0):
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _frames(n, width=160, height=96):
    from omniemo.media.synth import _frame

    return [_frame(i, width, height, 25) for i in range(n)]


def test_phase_inverted_stereo_keeps_one_channel(tmp_path):
    from omniemo.media.synth import write_frames

    tone = _tone()
    clip = load_clip(write_frames(tmp_path / "inverted.mp4", _frames(50), 25, audio=np.stack([tone, -tone])))
    assert np.sqrt(np.mean(clip.audio ** 2)) > 0.15  # the plain mix would be silence
    assert any("phase-inverted" in note for note in clip.notes)
    normal = load_clip(write_frames(tmp_path / "normal.mp4", _frames(50), 25, audio=np.stack([tone, tone])))
    assert not any("phase-inverted" in note for note in normal.notes)


def test_second_audio_track_with_the_sound_is_chosen(tmp_path):
    from omniemo.media.synth import write_frames

    tone = _tone()
    path = write_frames(tmp_path / "tracks.mkv", _frames(50), 25, audio=[np.zeros_like(tone), tone])
    assert probe(path).audio_tracks == 2
    clip = load_clip(path)
    assert np.sqrt(np.mean(clip.audio ** 2)) > 0.15
    assert any("audio track 2 of 2" in note for note in clip.notes)


def test_frames_stop_where_the_video_stream_ends(tmp_path):
    from omniemo.media import iter_frames
    from omniemo.media.synth import write_frames

    path = write_frames(tmp_path / "short_video.mp4", _frames(10), 25, audio=np.resize(_tone(), 6 * 16_000))
    info = probe(path)
    assert info.duration > 5.5 and info.video_duration == pytest.approx(0.4, abs=0.05)
    frames = list(iter_frames(path, FixedRate(5)))
    assert len(frames) == 2  # not 30 copies of the last frame
    # a plan that runs past the stream (a header that promises more) stops at the last frame too
    from omniemo.media.decode import _frames_at, _video_stream
    from omniemo.media.probe import open_container

    container = open_container(path)
    notes = []
    got = list(_frames_at(container, *_video_stream(container, info), np.arange(0, 6, 0.2), notes, 160, 96))
    container.close()
    assert len(got) <= 3 and any("analysed up to its end" in n for n in notes)  # 0.0, 0.2 (and 0.4, still on screen)


def test_rotation_metadata_is_applied(tmp_path):
    from omniemo.media.synth import write_frames

    frames = _frames(20)
    upright = load_clip(write_frames(tmp_path / "upright.mp4", frames, 25), FixedRate(5))
    rotated = load_clip(write_frames(tmp_path / "portrait.mp4", frames, 25, rotation=90), FixedRate(5))
    assert upright.frames.shape[1:3] == (96, 160) and rotated.frames.shape[1:3] == (160, 96)
    np.testing.assert_allclose(rotated.frames[0].astype(float), np.rot90(upright.frames[0]).astype(float), atol=40)
    assert any("rotated by 90 degrees" in n for n in rotated.notes)


def test_raw_h264_stream_without_duration(tmp_path):
    import av

    from omniemo.media import iter_frames
    from omniemo.media.synth import _frame

    path = tmp_path / "raw.h264"
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(67):
            frame = av.VideoFrame.from_ndarray(_frame(i, 160, 96, 25), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe(path)
    assert info.num_frames == 67 and info.duration == pytest.approx(67 / 25)
    got = [(t, read_frame_index(f)) for t, f in iter_frames(path, FixedRate(5))]
    assert len(got) == 14 and [i for _, i in got] == list(range(0, 67, 5))


def test_non_finite_audio_samples_are_reported(tmp_path):
    from omniemo.media.synth import write_frames

    audio = _tone()
    audio[::3] = np.nan
    audio[1::7] = np.inf
    clip = load_clip(write_frames(tmp_path / "nan.wav", None, 25, audio=audio))
    assert np.isfinite(clip.audio).all()
    assert any("non-finite samples" in note for note in clip.notes)
