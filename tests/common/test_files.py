"""Atomic writes: the old file survives an interrupted write, and what a killed writer left is removed."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.files import atomic_path, remove_stale_temp_files, temp_path, write_atomic

ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    """The pid of a process that has exited."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_write_atomic_replaces_text_and_bytes(tmp_path):
    path = tmp_path / "records.json"
    write_atomic(path, "[1, 2]")
    assert path.read_text() == "[1, 2]"
    write_atomic(path, b"\x89PNG")
    assert path.read_bytes() == b"\x89PNG"
    assert os.listdir(tmp_path) == ["records.json"]  # no temp file left


def test_temp_names_are_hidden_beside_the_target_unique_and_name_the_writer(tmp_path):
    target = tmp_path / "clip.mp4"
    names = {temp_path(target) for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(".clip.mp4.") and name.suffix == ".tmp"
        assert name.name.rsplit(".", 2)[-2] == str(os.getpid())


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "job.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of the n")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["job.json"]


def test_a_killed_write_leaves_the_old_file_and_a_temp_that_the_next_start_removes(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_text("old")
    writer = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal
        from common.files import atomic_path
        with atomic_path({str(path)!r}) as tmp:
            tmp.write_text("half of the n")
            os.kill(os.getpid(), signal.SIGKILL)
    """)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert writer.returncode == -signal.SIGKILL
    assert path.read_text() == "old"
    (left,) = [p for p in tmp_path.iterdir() if p != path]
    assert left.name.startswith(".checkpoint.pt.")
    assert remove_stale_temp_files(tmp_path) == [left.name]
    assert list(tmp_path.iterdir()) == [path]


def test_stale_temp_files_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = dead_pid()
    live_temp = temp_path(tmp_path / ("b" * 32 + ".mp4"))
    kept = [tmp_path / ("a" * 32 + ".mp4"), live_temp]
    stale = [
        tmp_path / f".{'c' * 32}.mp4.1a2b3c4d.{dead}.tmp",  # this scheme
        tmp_path / f".weights.safetensors.{dead}.tmp",  # an older scheme: the pid only
        tmp_path / ".job.json.tmp",  # an older scheme that named no writer
        tmp_path / f".{'d' * 32}.mp4.{os.getpid()}.old.tmp",  # no pid in place: not ours to keep
    ]
    upload = tmp_path / f".upload.1a2b3c4d.{dead}.tmp"  # a temp folder (an upload), with its file
    for path in kept + stale:
        path.write_bytes(b"x")
    upload.mkdir()
    (upload / "clip.mp4").write_bytes(b"x")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(p.name for p in [*stale, upload])
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    os.utime(live_temp, (0, 0))  # a day old: its pid may be another process's by now
    assert remove_stale_temp_files(tmp_path) == [live_temp.name]


def test_a_missing_folder_has_no_stale_files(tmp_path):
    assert remove_stale_temp_files(tmp_path / "absent") == []
