"""Tests of the reader: frame sampling, decoding real world clips, and surviving bad files."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from indexer.isolated_reader import FrameReader
from indexer.probe import BadVideo, ReadLimits, VideoInfo, probe, sniff
from indexer.reader import SampledFrames, read_frames, read_span, sample_indices
from tests.fixtures import BAD_WRITERS, write_world_ts, write_world_videos

REPO = Path(__file__).resolve().parents[2]

REASONS = {  # the start of the reason each bad file kind must give
    "truncated": "truncated: box 'mdat' ends at byte",
    "zero_byte": "empty file (0 bytes)",
    "text": "not a video (looks like text)",
    "random": "not a video (unrecognised content)",
    "png": "not a video (a PNG image)",
    "huge_resolution": "declared resolution 16000x16000 exceeds the limit",
    "huge_frame_count": "declares 4000000000 frames, over the limit",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> list[Path]:
    return write_world_videos(tmp_path_factory.mktemp("world"), 6, seed=0)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    return {name: write(folder / f"{name}.mp4") for name, write in BAD_WRITERS.items()}


@pytest.fixture(scope="module")
def bad_through_reader(world, bad) -> tuple[list[Path], list]:
    """Every bad file, each followed by a good one, read by one FrameReader."""
    paths = [p for name in bad for p in (bad[name], world[0])]
    with FrameReader() as reader:
        return paths, list(reader.read(paths))


# ---------------------------------------------------------------------------------------------
# Sampling


@pytest.mark.parametrize(
    "num_frames, fps, rate, cap",
    [
        (1, 8, 2, 512),
        (2, 8, 2, 512),
        (16, 8, 2, 512),
        (16, 8, 100, 512),
        (7, 25, 0.1, 2),
        (1000, 24, 2, 10),
        (100_000, 30, 2, 512),
        (333, 29.97, 2, 512),
    ],
)
def test_sample_indices_keep_first_and_last_within_cap(num_frames, fps, rate, cap):
    indices = sample_indices(num_frames, fps, rate, cap)
    assert indices[0] == 0 and indices[-1] == num_frames - 1
    assert len(indices) <= cap
    assert np.all(np.diff(indices) > 0)
    assert indices.dtype.kind == "i"


def test_sample_indices_follow_the_rate():
    indices = sample_indices(300, 30.0, rate=2.0)  # 10 s: every 15th frame, then the last
    assert indices.tolist() == [*range(0, 300, 15), 299]
    assert len(sample_indices(16, 8.0, rate=100.0)) == 16  # faster than the video: every frame


def test_sample_indices_spread_evenly_under_the_cap():
    indices = sample_indices(100_000, 30.0, rate=2.0, cap=512)
    assert len(indices) == 512
    assert np.ptp(np.diff(indices)) <= 1


def test_sample_indices_edge_cases():
    assert sample_indices(1, 8.0).tolist() == [0]
    assert sample_indices(0, 8.0).tolist() == []
    with pytest.raises(ValueError):
        sample_indices(10, 8.0, cap=1)
    with pytest.raises(ValueError):
        sample_indices(10, 0.0)


def test_bad_video_survives_pickling():
    error = pickle.loads(pickle.dumps(BadVideo(Path("a.mp4"), "empty file (0 bytes)")))
    assert (error.path, error.reason, str(error)) == (
        Path("a.mp4"),
        "empty file (0 bytes)",
        "a.mp4: empty file (0 bytes)",
    )


# ---------------------------------------------------------------------------------------------
# Probing and reading in this process


def test_read_frames_matches_the_source_clip(world):
    clip = sample_clips(0, 0, 1)[0]
    got = read_frames(world[0])
    assert got.info == VideoInfo(64, 64, 8.0, 16, 2.0, "h264", "mp4")
    assert got.indices.tolist() == [0, 4, 8, 12, 15]
    np.testing.assert_allclose(got.times, got.indices / FPS)
    assert got.frames.shape == (5, 64, 64, 3) and got.frames.dtype == np.uint8
    error = np.abs(got.frames.astype(float) - clip.frames[got.indices]).mean()
    assert error < 4.0  # H.264 is lossy; about 1.7 measured at crf 18


def test_read_span_gives_the_frames_shown_at_its_rate_held_at_the_end(tmp_path):
    """A 64 s video at 25 fps: the span 60..66 s at 8 fps is the frames shown then, the last one held."""
    frames = np.zeros((1600, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(1600) % 250)[:, None, None]  # the frame number, in red
    path = write_mp4(tmp_path / "long.mp4", frames, 25)
    got, times = read_span(path, 60.0, 66.0, 8.0)
    expected = np.minimum(np.floor(np.arange(60.0, 66.0 + 1e-6, 0.125) * 25 + 1e-6), 1599)
    np.testing.assert_allclose(times, expected / 25)
    assert got.shape == (49, 32, 32, 3)
    assert np.abs(got[..., 0].mean(axis=(1, 2)) - expected % 250).max() < 3  # H.264 is lossy


def test_read_frames_downscales_but_never_upscales(world, tmp_path):
    clip = sample_clips(0, 0, 1)[0]
    small = read_frames(world[0], max_side=32)
    reference = clip.frames[small.indices].reshape(-1, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    assert small.frames.shape == (5, 32, 32, 3)
    assert np.abs(small.frames - reference).mean() < 5.0
    assert read_frames(world[0], max_side=1000).frames.shape == (5, 64, 64, 3)
    wide = write_mp4(tmp_path / "wide.mp4", np.concatenate([clip.frames] * 2, axis=2), FPS)
    assert read_frames(wide, max_side=32).frames.shape == (5, 32, 64, 3)  # aspect kept


def test_read_frames_falls_back_where_decord_fails(tmp_path):
    clip = sample_clips(0, 0, 1)[0]
    got = read_frames(write_world_ts(tmp_path / "clip.ts"))  # decord cannot read its last frame
    assert got.info.container == "mpegts" and got.info.num_frames == 16
    assert got.indices.tolist() == [0, 4, 8, 12, 15]
    assert np.abs(got.frames.astype(float) - clip.frames[got.indices]).mean() < 4.0


def test_read_span_falls_back_where_decord_fails(tmp_path, caplog):
    clip = sample_clips(0, 0, 1)[0]
    frames, times = read_span(write_world_ts(tmp_path / "clip.ts"), 1.0, 2.5, 8.0)  # past the end: held
    assert "decoding the span with PyAV" in caplog.text
    indices = [8, 9, 10, 11, 12, 13, 14, 15, 15, 15, 15, 15, 15]
    np.testing.assert_allclose(times, np.array(indices) / FPS)
    assert np.abs(frames.astype(float) - clip.frames[indices]).mean() < 4.0


def test_sniff_reads_content_not_name(world, bad, tmp_path):
    renamed = shutil.copy(world[0], tmp_path / "holiday notes.txt")
    assert sniff(renamed) == "mp4"
    assert probe(renamed).container == "mp4"
    assert read_frames(renamed).frames.shape == (5, 64, 64, 3)
    assert sniff(bad["text"]) is None and sniff(bad["png"]) is None


@pytest.mark.parametrize(
    "limits, reason",
    [
        (ReadLimits(max_bytes=100), "file of"),
        (ReadLimits(max_pixels=1000), "declared resolution"),
        (ReadLimits(max_duration_s=1.0), "duration 2 s"),
        (ReadLimits(max_frames=10), "declares 16"),
    ],
)
def test_probe_enforces_limits(world, limits, reason):
    with pytest.raises(BadVideo, match=reason):
        probe(world[0], limits)


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_read_frames_rejects_bad_files(bad, kind):
    with pytest.raises(BadVideo) as caught:
        read_frames(bad[kind])
    assert caught.value.reason.startswith(REASONS[kind])
    assert caught.value.path == bad[kind]


# ---------------------------------------------------------------------------------------------
# Reading in a child process


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_frame_reader_survives_bad_files(bad_through_reader, bad, kind):
    paths, results = bad_through_reader
    at = paths.index(bad[kind])
    assert isinstance(results[at], BadVideo)
    assert results[at].reason.startswith(REASONS[kind])
    assert isinstance(results[at + 1], SampledFrames)  # the good file after it still comes


def test_frame_reader_on_flipped_bytes_gives_frames_or_a_reason(bad_through_reader, bad):
    paths, results = bad_through_reader
    result = results[paths.index(bad["corrupt_mdat"])]
    if isinstance(result, BadVideo):
        assert "corrupt" in result.reason
    else:
        assert result.frames.shape[1:] == (64, 64, 3) and len(result.frames) >= 2


def test_frame_reader_keeps_input_order(bad_through_reader):
    paths, results = bad_through_reader
    assert [r.path for r in results] == paths


def test_frame_reader_survives_a_real_decoder_crash(world, bad):
    limits = ReadLimits(max_frames=10**10)  # let the file past the probe, so decord meets it
    with FrameReader(limits=limits) as reader:
        first_pid = reader.pid
        results = list(reader.read([world[0], bad["huge_frame_count"], world[1]]))
        assert reader.pid != first_pid
    assert results[1].reason == "decoder crashed (signal SIGABRT)"  # decord: std::bad_alloc
    assert [type(r) for r in results] == [SampledFrames, BadVideo, SampledFrames]


def test_frame_reader_restarts_a_killed_child(world):
    with FrameReader(prefetch=2) as reader:
        pid = reader.pid
        os.kill(pid, signal.SIGSTOP)  # frozen before the first file, which it will never finish
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        results = list(reader.read(world[:4]))
    assert results[0].reason == "decoder crashed (signal SIGKILL)"
    assert all(isinstance(r, SampledFrames) for r in results[1:])  # resent to the new child
    assert [r.path for r in results] == world[:4]


def test_frame_reader_times_out_a_stalled_child(world):
    with FrameReader(limits=ReadLimits(timeout_s=1.0)) as reader:
        os.kill(reader.pid, signal.SIGSTOP)
        results = list(reader.read(world[:2]))
    assert results[0].reason == "timed out after 1 s"
    assert isinstance(results[1], SampledFrames)


def test_frame_reader_can_stop_early_and_read_again(world):
    with FrameReader() as reader:
        results = reader.read(world)
        next(results)
        results.close()  # the caller breaks out with files still queued in the child
        again = list(reader.read(world[:2]))
    assert [r.path for r in again] == world[:2]


def test_frame_reader_decodes_each_file_once_in_one_child(world, monkeypatch):
    """What keeps the isolation cheap: one child for the whole batch, each file handed to it once, the same
    frames as reading in process. (Its cost in time is part of the ingest rate that bench/ingest.py measures.)"""
    paths = world * 3
    sent, send = [], FrameReader._send

    def recording_send(self, job):
        sent.append(job)
        send(self, job)

    monkeypatch.setattr(FrameReader, "_send", recording_send)
    with FrameReader() as reader:
        child = reader.pid
        got = list(reader.read(paths))
        assert reader.pid == child  # not restarted, not one child per file
    assert [path for _, path in filter(None, sent)] == paths  # one decode per file, none sent again
    expected = [read_frames(p) for p in paths]
    assert [r.path for r in got] == paths
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(expected, got, strict=True))


def test_child_starts_without_the_callers_heavy_imports(world, tmp_path):
    marker = tmp_path / "imports.txt"
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        f"open({str(marker)!r}, 'a').write('app imported\\n')  # the caller's heavy set-up\n"
        "if __name__ == '__main__':\n"
        "    from indexer.isolated_reader import FrameReader\n"
        "    assert not {'torch', 'generator', 'search'} & {m.split('.')[0] for m in sys.modules}\n"
        "    with FrameReader() as reader:\n"
        f"        print(type(next(reader.read([{str(world[0])!r}]))).__name__)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SampledFrames"
    assert marker.read_text() == "app imported\n"  # once: the child did not re-run app.py


@pytest.fixture
def phone_video(tmp_path) -> Path:
    """A landscape-coded video with a display rotation of 90 degrees clockwise, as phones record portrait:
    its left half red and its right half blue in the coded pixels, so red is on top as it is shown."""
    from tests.footage import Footage, _set_display_rotation

    path = tmp_path / "phone.mp4"
    frames = np.zeros((6, 180, 320, 3), np.uint8)
    frames[:, :, :160] = (220, 20, 20)
    frames[:, :, 160:] = (20, 20, 220)
    write_mp4(path, frames, 25)
    _set_display_rotation(path, Footage("phone.mp4", 320, 180, rotate=90).rotate)
    return path


def _red_on_top(frames: np.ndarray) -> bool:
    h = frames.shape[1]
    top, bottom = frames[:, : h // 3].mean(axis=(0, 1, 2)), frames[:, -h // 3:].mean(axis=(0, 1, 2))
    return top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


@pytest.mark.parametrize("max_side", [256, 90])  # unscaled and scaled: decord turns, then scales
def test_a_rotated_video_is_read_as_it_is_shown(phone_video, max_side, monkeypatch):
    info = probe(phone_video)
    assert info.turns == 3 and info.shown_size == (180, 320)
    sampled = read_frames(phone_video, max_side=max_side)
    assert sampled.frames.shape[1] > sampled.frames.shape[2] and _red_on_top(sampled.frames)
    span, _ = read_span(phone_video, 0.0, 0.1, 10.0, max_side=max_side)
    assert span.shape[1:3] == sampled.frames.shape[1:3] and _red_on_top(span)
    monkeypatch.setattr("indexer.reader.decord.VideoReader", _failing_decord)
    fallback = read_frames(phone_video, max_side=max_side)  # PyAV never turns the picture itself
    assert fallback.frames.shape == sampled.frames.shape and _red_on_top(fallback.frames)


def _failing_decord(*args, **kwargs):
    raise RuntimeError("decord fails on this file")
