"""Settings and history on disk: validation, round trips, and recovery from damaged files."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from core.settings import HistoryEntry, Settings, SettingsError, UserFiles, parse_settings


def test_settings_round_trip(tmp_path):
    files = UserFiles(tmp_path)
    changed = replace(
        Settings(),
        mode="push-to-talk",
        end_of_turn_ms=800,
        speed=1.25,
        persona="Ada",
        input_device="USB Mic",
        asr_model="whisper-tiny-en",
    )
    files.save_settings(changed)
    loaded, notice = files.load_settings()
    assert loaded == changed and notice is None
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file and renamed


def test_missing_file_is_the_defaults_without_a_notice(tmp_path):
    assert UserFiles(tmp_path).load_settings() == (Settings(), None)
    assert UserFiles(tmp_path).load_history() == ([], None)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mode": "telepathy"}, "mode"),
        ({"end_of_turn_ms": 50}, "end_of_turn_ms"),
        ({"vad_sensitivity": "high"}, "vad_sensitivity"),
        ({"echo_cancellation": 1}, "echo_cancellation"),
        ({"version": 7}, "version"),
    ],
)
def test_bad_values_are_refused_by_name(change, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings({**Settings().to_json(), **change})


def test_unknown_keys_from_a_newer_version_are_ignored():
    assert parse_settings({**Settings().to_json(), "future_option": 3}) == Settings()


def test_sensitivity_maps_to_the_speech_threshold():
    config = replace(Settings(), vad_sensitivity=0.8, end_of_turn_ms=700).turn_config()
    assert config.threshold == pytest.approx(0.2) and config.end_of_turn_ms == 700


@pytest.mark.parametrize("name", ["settings.json", "history.json"])
def test_a_damaged_file_is_kept_aside_and_replaced_by_defaults(tmp_path, name):
    files = UserFiles(tmp_path)
    (tmp_path / name).write_text('{"schema": "voice-companion/')
    value, notice = files.load_settings() if name == "settings.json" else files.load_history()
    assert value == (Settings() if name == "settings.json" else [])
    assert name in notice and "kept as" in notice
    backups = list(tmp_path.glob(f"{name}.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text() == '{"schema": "voice-companion/'
    assert not (tmp_path / name).exists()


def test_history_round_trip(tmp_path):
    files = UserFiles(tmp_path)
    entries = [HistoryEntry("user", "Hi"), HistoryEntry("assistant", "Hello th", interrupted=True, latency_ms=640.5)]
    files.save_history(entries)
    loaded, notice = files.load_history()
    assert loaded == entries and notice is None
    assert json.loads(files.history_file.read_text())["schema"] == "voice-companion/history"
