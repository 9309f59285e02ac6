"""The user's data stays theirs: private files, erasing from the core and the command line, and the
smaller promises (voice clips stay in voices/, unique clip names, converted model files checked,
torch new enough to load weights safely)."""

from __future__ import annotations

import json
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import models.registry  # noqa: F401  (first: models.omni.assets and the catalog import each other)
from core import erase
from core.settings import HistoryEntry, Settings, SettingsError, UserFiles, parse_settings
from core.style.presets import PresetStore, parse_preset
from core.style.voice_clips import PROFILE_SUFFIX, _reserve_clip_name, clip_names
from models.registry.atomic import write_json

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def profile_json() -> dict:
    from core.style.voice_match import GRID_HZ, VoiceProfile

    return VoiceProfile(180.0, 5.0, 1.05, -8.0, tuple(0.5 for _ in GRID_HZ)).to_json()


def put_clip(files: UserFiles, name: str) -> None:
    """A clip and its stored profile as add_clip leaves them (without measuring a real voice)."""
    from core.audio.io import save_wav

    files.folder(files.voices)
    save_wav(files.voices / name, np.zeros(1600, np.float32), 16000)
    write_json(files.voices / (name + PROFILE_SUFFIX), profile_json())


def test_the_data_folder_is_0700_and_every_file_0600(tmp_path):
    files = UserFiles(tmp_path / "data")
    files.save_settings(Settings())
    files.save_history([HistoryEntry("user", "my secret")])
    PresetStore(files.presets).save(parse_preset({"schema": "voice-companion/preset", "version": 1, "name": "Mine"}))
    put_clip(files, "me-1.wav")
    for folder in (files.root, files.presets, files.voices):
        assert mode(folder) == 0o700, folder
    written = [p for p in files.root.rglob("*") if p.is_file()]
    assert len(written) == 5
    for path in written:
        assert mode(path) == 0o600, path


def test_a_rewrite_keeps_the_mode_the_user_gave_the_file(tmp_path):
    files = UserFiles(tmp_path)
    files.save_history([HistoryEntry("user", "one")])
    os.chmod(files.history_file, 0o400)  # the user's own choice
    files.save_history([HistoryEntry("user", "one"), HistoryEntry("assistant", "two")])
    assert mode(files.history_file) == 0o400
    assert len(files.load_history()[0]) == 2


def test_start_up_tightens_an_old_folder_and_removes_stale_temps_holding_audio(tmp_path):
    root = tmp_path / "data"
    (root / "voices").mkdir(parents=True)
    (root / "models" / "whisper-base").mkdir(parents=True)
    os.chmod(root, 0o755)
    (root / "history.json").write_text("{}")
    os.chmod(root / "history.json", 0o644)
    os.chmod(root / "voices", 0o755)
    stale = root / "voices" / ".me.wav.1a2b3c4d.tmp"  # a recording cut short by a kill
    stale.write_bytes(b"RIFF....")
    model = root / "models" / "whisper-base" / "model.bin"
    model.write_bytes(b"weights")
    os.chmod(model, 0o644)
    UserFiles(root).secure()
    assert mode(root) == 0o700 and mode(root / "voices") == 0o700
    assert mode(root / "history.json") == 0o600
    assert not stale.exists()
    assert mode(model) == 0o644  # models are the app's, and may be hard links into a package


def test_delete_clip_removes_the_clip_its_profile_and_every_reference(tmp_path):
    files = UserFiles(tmp_path)
    put_clip(files, "anna-1.wav")
    put_clip(files, "bob-1.wav")
    store = PresetStore(files.presets)
    store.save(
        parse_preset(
            {
                "schema": "voice-companion/preset",
                "version": 1,
                "name": "Anna",
                "voice_reference": {"clip": "anna-1.wav", "profile": profile_json()},
            }
        )
    )
    files.save_settings(replace(Settings(), voice_reference="anna-1.wav"))
    removed = erase.delete_clip(files, "anna-1.wav")
    assert sorted(removed) == ["anna-1.wav", "anna-1.wav" + PROFILE_SUFFIX]
    assert clip_names(files.voices) == ["bob-1.wav"] and (files.voices / ("bob-1.wav" + PROFILE_SUFFIX)).exists()
    assert store.get("Anna").voice_reference is None
    assert "anna-1" not in (files.presets / "anna.json").read_text()  # the profile copy is gone too
    assert files.load_settings()[0].voice_reference is None
    with pytest.raises(KeyError):
        erase.delete_clip(files, "anna-1.wav")
    with pytest.raises(KeyError):
        erase.delete_clip(files, "../settings.json")


def test_forget_everything_leaves_only_the_models(tmp_path):
    files = UserFiles(tmp_path)
    files.save_settings(replace(Settings(), persona="Ada"))
    files.save_history([HistoryEntry("user", "my secret")])
    (tmp_path / "history.json.corrupt-20250101-000000").write_text("old secret")
    PresetStore(files.presets).save(parse_preset({"schema": "voice-companion/preset", "version": 1, "name": "Mine"}))
    put_clip(files, "me-1.wav")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "voice-companion.log").write_text("a log line")
    (tmp_path / "logs" / "voice-companion.log.1").write_text("an older one")
    model = tmp_path / "models" / "whisper-base" / "model.bin"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    erase.forget_everything(files)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size)
    assert left == ["models/whisper-base/model.bin"]


def run_cli(args: list[str], data: Path, stdin: str | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        cwd=ROOT,
        env={**os.environ, "VOICE_COMPANION_DATA": str(data), "PYTHONPATH": str(ROOT)},
    )


def test_the_data_command_erases_and_refuses_in_one_line(tmp_path):
    files = UserFiles(tmp_path)
    files.save_history([HistoryEntry("user", "my secret")])
    put_clip(files, "me-1.wav")
    done = run_cli(["data", "clear-history"], tmp_path)
    assert done.returncode == 0 and "history.json" in done.stdout and not files.history_file.exists()
    missing = run_cli(["data", "delete-clip", "nobody.wav"], tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "me-1.wav" in missing.stderr
    assert run_cli(["data", "delete-clip", "me-1.wav"], tmp_path).returncode == 0
    assert clip_names(files.voices) == []
    files.save_settings(Settings())
    refused = run_cli(["data", "forget"], tmp_path, stdin="")  # not a terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr and files.settings_file.exists()
    assert run_cli(["data", "forget", "--yes"], tmp_path).returncode == 0
    assert not files.settings_file.exists()


# ---- the smaller promises ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../settings.json", "/etc/passwd", "voices/../../x.wav", "..", "a\\b.wav", "a\nb"])
def test_a_voice_reference_outside_the_voices_folder_is_refused(name):
    with pytest.raises(SettingsError, match="voice_reference"):
        parse_settings({**Settings().to_json(), "voice_reference": name})


def test_clip_names_made_within_one_second_by_many_threads_are_all_different(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda _fmt, *a: "20250101-120000")  # all in the same second
    names: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        name = _reserve_clip_name(tmp_path, "recording")
        with lock:
            names.append(name)

    threads = [threading.Thread(target=make) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 16 and len(list(tmp_path.glob("*.wav"))) == 16


def test_torch_is_required_at_a_version_whose_weights_only_load_runs_no_code():
    import tomllib

    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(Requirement(d) for d in deps if Requirement(d).name == "torch")
    assert not torch.specifier.contains("2.5.1") and torch.specifier.contains("2.6.0")


def test_a_converted_omni_file_that_changed_is_converted_again(tmp_path):
    from models.omni.convert import CONVERTER, META_FILE
    from models.omni.install import CONVERTED_FILES, converted_hashes, is_current

    for name in CONVERTED_FILES:
        (tmp_path / name).write_bytes(name.encode() * 100)
    write_json(
        tmp_path / META_FILE, {"converter": CONVERTER, "source_sha256": "s" * 64, "files": converted_hashes(tmp_path)}
    )
    assert is_current(tmp_path, "s" * 64)
    with open(tmp_path / CONVERTED_FILES[0], "r+b") as f:  # one flipped byte, same size
        f.write(b"X")
    assert not is_current(tmp_path, "s" * 64)
    meta = json.loads((tmp_path / META_FILE).read_text())
    write_json(tmp_path / META_FILE, {k: v for k, v in meta.items() if k != "files"})  # an older version's folder
    assert not is_current(tmp_path, "s" * 64)


def test_start_up_is_offline_until_the_user_asks_for_a_download(monkeypatch):
    import huggingface_hub.constants as hub

    from models.registry.offline import OFFLINE_ENV, online, stay_offline

    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    stay_offline()
    try:
        assert all(os.environ[k] == v for k, v in OFFLINE_ENV.items()) and hub.is_offline_mode()
        with online():
            assert not hub.is_offline_mode() and "HF_HUB_OFFLINE" not in os.environ
        assert hub.is_offline_mode() and os.environ["HF_HUB_OFFLINE"] == "1"
        with pytest.raises(RuntimeError), online():
            raise RuntimeError("a failed download")
        assert hub.is_offline_mode()
    finally:
        for name in OFFLINE_ENV:
            os.environ.pop(name, None)


def test_an_export_gets_the_users_umask_not_the_private_mode(tmp_path):
    from core.audio.io import save_wav

    store = PresetStore(tmp_path / "data" / "presets")
    store.save(parse_preset({"schema": "voice-companion/preset", "version": 1, "name": "Mine"}))
    old = os.umask(0o022)
    try:
        store.export("Mine", tmp_path / "mine.json")
        save_wav(tmp_path / "talk.wav", np.zeros(160, np.float32), 16000, private=False)
    finally:
        os.umask(old)
    assert mode(tmp_path / "mine.json") == 0o644 and mode(tmp_path / "talk.wav") == 0o644
    kept = list((tmp_path / "data" / "presets").glob("*.json"))
    assert kept and all(mode(p) == 0o600 for p in kept)  # the app's own copy stays private
