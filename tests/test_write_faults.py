"""Faults while the user's files are written: a read-only data folder, a full disk, and the process
killed in the middle of a write. Each time the previous file stays whole (or the new one is whole),
the user is told once, and the conversation goes on.

The read-only folder is a read-only bind mount and the full disk a 64 kB tmpfs: the tests run as
root (permission bits alone do not stop root), and every mount is undone when the test ends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import models.registry  # noqa: F401  (first: the catalog and models.omni.assets import each other)
from core.events import Notice, UserTranscript
from core.app_backend import Runtime
from core.settings import HistoryEntry, Settings, UserFiles
from core.style import voice_clips
from core.style.presets import PresetStore, parse_preset
from core.style.voice_match import GRID_HZ, VoiceProfile
from models.registry import ModelStore

ROOT = Path(__file__).resolve().parent.parent
PROFILE = VoiceProfile(180.0, 5.0, 1.05, -8.0, tuple(0.5 for _ in GRID_HZ))
HISTORY = [HistoryEntry("user", "Hello", at=1.0), HistoryEntry("assistant", "Hi there.", at=2.0)]


def preset(name: str = "Mine", speed: float = 1.0):
    return parse_preset({"schema": "voice-companion/preset", "version": 1, "name": name, "speed": speed})


def fill_good(root: Path) -> dict[str, bytes]:
    files = UserFiles(root)
    files.save_settings(replace(Settings(), persona="Ada"))
    files.save_history(HISTORY)
    PresetStore(files.presets).save(preset())
    files.folder(files.voices)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def read_only(folder: Path):
    mount("--bind", str(folder), str(folder))
    try:
        mount("-o", "remount,bind,ro", str(folder))
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


@contextmanager
def full_disk(folder: Path):
    """`folder` on a 64 kB tmpfs: the good files are written first, then the rest is filled."""
    folder.mkdir(parents=True)
    mount("-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder))
    try:
        yield lambda: _fill(folder)
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 1024)
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC: the disk is full, which is what is wanted
    with pytest.raises(OSError):
        (folder / "probe").write_bytes(b"x" * 8192)


@pytest.fixture(params=["read-only", "full"])
def broken_folder(request, tmp_path):
    """A data folder holding good files, which then cannot take any more writes."""
    root = tmp_path / "data"
    if request.param == "read-only":
        root.mkdir()
        good = fill_good(root)
        with read_only(root):
            yield root, good
    else:
        with full_disk(root) as fill:
            good = fill_good(root)
            fill()
            good = snapshot(root)
            yield root, good


def no_engine(_settings):
    raise RuntimeError("not needed")


def test_history_and_settings_writes_fail_with_one_notice_and_the_conversation_goes_on(broken_folder):
    root, good = broken_folder
    notices: list[Notice] = []
    passed_on = []

    def on_event(event):
        (notices if isinstance(event, Notice) else passed_on).append(event)

    runtime = Runtime(on_event, UserFiles(root), ModelStore(root), simulated=True, load_engine=no_engine, vad=object())
    try:
        for text in ("first question", "second question", "third question"):
            runtime._on_conversation_event(UserTranscript(text))  # what a heard turn delivers
        runtime.apply(replace(runtime.settings, speed=1.2))
    finally:
        runtime.shutdown()
    history_notices = [n for n in notices if "history" in n.message]
    settings_notices = [n for n in notices if "settings" in n.message]
    assert len(history_notices) == 1 and len(settings_notices) == 1, notices
    assert [e.text for e in runtime.history][-3:] == ["first question", "second question", "third question"]
    assert [e.text for e in passed_on if isinstance(e, UserTranscript)][-3:] == [
        "first question",
        "second question",
        "third question",
    ]  # still shown
    assert runtime.settings.speed == 1.2  # applied for this session
    assert snapshot(root) == good  # the previous files whole, no temp files left


def test_preset_and_clip_writes_fail_cleanly(broken_folder, monkeypatch):
    root, good = broken_folder
    files = UserFiles(root)
    with pytest.raises(OSError):
        PresetStore(files.presets).save(preset(speed=1.5))
    with pytest.raises(OSError):
        PresetStore(files.presets).save(preset("Another"))
    monkeypatch.setattr(voice_clips, "analyze_reference", lambda audio, rate: PROFILE)
    with pytest.raises(OSError):
        voice_clips.add_clip(files.voices, np.zeros(16000 * 6, np.float32), "me")
    assert snapshot(root) == good
    assert PresetStore(files.presets).get("Mine").speed == 1.0


# ---- killed in the middle of a write ----------------------------------------------------------


def _write_until_killed(kind: str, root: Path, when: str, ready_fd: int) -> None:
    """In the forked writer: write version 0 of `kind`, then version 1 stopped just before or just
    after its rename ("paused" on `ready_fd`), or versions 1, 2, ... without end ("anytime")."""
    from core.audio.io import save_wav

    files = UserFiles(root)

    def write(version: int) -> None:
        if kind == "settings":
            files.save_settings(replace(Settings(), persona="v%d" % version))
        elif kind == "history":
            files.save_history([HistoryEntry("user", "v%d" % version, at=1.0)] * (1 + version % 2) * 200)
        elif kind == "preset":
            preset = {"schema": "voice-companion/preset", "version": 1, "name": "Mine", "persona": "v%d" % version}
            PresetStore(files.presets).save(parse_preset(preset))
        else:
            files.folder(files.voices)
            audio = np.full(16000 * (1 + version % 2), 0.01 * (version % 7), np.float32)
            save_wav(files.voices / "me.wav", audio, 16000)

    def paused() -> None:
        os.write(ready_fd, b"paused\n")

    write(0)
    real_replace = os.replace

    def replace_then_pause(src, dst):
        if when == "before-rename":
            paused()
            time.sleep(600)
        real_replace(src, dst)
        if when == "after-rename":
            paused()
            time.sleep(600)

    if when != "anytime":
        os.replace = replace_then_pause  # only in the child: the fork has its own copy of `os`
        write(1)
    else:
        paused()
        version = 1
        while True:
            write(version)
            version += 1


TARGETS = {
    "settings": "settings.json",
    "history": "history.json",
    "preset": "presets/mine.json",
    "clip": "voices/me.wav",
}


def readable(kind: str, path: Path) -> str:
    """The version number a whole file holds; fails on a torn one."""
    if kind == "clip":
        import soundfile

        audio, rate = soundfile.read(path, dtype="float32")
        assert rate == 16000 and len(audio) in (16000, 32000)
        return str(round(float(audio[0]) / 0.01) if len(audio) else "?")
    data = json.loads(path.read_text())
    if kind == "history":
        texts = {e["text"] for e in data["entries"]}
        assert len(texts) == 1
        return texts.pop()
    return data["persona"]


def kill_writer(kind: str, root: Path, when: str, delay: float = 0.0) -> None:
    """A writer process killed (SIGKILL, nothing runs after it) at the point `when` names, or
    `delay` seconds into a stream of writes. The writer is a fork of this process, so it writes
    with the very code imported here and starts in milliseconds."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: never returns into pytest
        try:
            os.close(read_fd)
            _write_until_killed(kind, root, when, write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 60)
        assert ready and os.read(read_fd, 16) == b"paused\n", "the writer never reached its point"
        if delay:
            time.sleep(delay)  # somewhere in a stream of writes; where does not matter, any point must hold
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_a_kill_in_the_middle_of_a_write_leaves_the_old_or_the_new_file_never_a_torn_one(kind, tmp_path):
    target = tmp_path / "a" / TARGETS[kind]
    kill_writer(kind, tmp_path / "a", "before-rename")  # the new file written, not yet renamed
    assert readable(kind, target) in ("v0", "0")
    leftovers = list(target.parent.glob(".*.tmp"))
    assert len(leftovers) == 1  # the temp the kill left ...
    UserFiles(tmp_path / "a").secure()
    assert not list(target.parent.glob(".*.tmp"))  # ... is gone at the next start

    target = tmp_path / "b" / TARGETS[kind]
    kill_writer(kind, tmp_path / "b", "after-rename")
    assert readable(kind, target) in ("v1", "1")

    for n, delay in enumerate((0.05, 0.2, 0.5)):
        target = tmp_path / f"c{n}" / TARGETS[kind]
        kill_writer(kind, tmp_path / f"c{n}", "anytime", delay)
        readable(kind, target)  # whole, whichever version
