"""The desktop app on the offscreen platform, driving real models in a simulated laptop room."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer, Qt

from app.main_window import MainWindow
from app.settings_dialog import SettingsDialog
from core.app_backend import Runtime
from core.events import Mode
from core.settings import Settings

pytestmark = pytest.mark.timeout(300)


class StallProbe:
    """A 5 ms timer on the GUI thread. Between two ticks, the GUI thread's own CPU time is how long
    our code kept the event loop busy (`worst`: the longest busy stretch). The wall-clock gap also
    counts time the OS gave the cores to other processes, which on a loaded machine says nothing
    about the window, so it is not asserted; the window never waits on the conversation's locks
    by construction (its calls go through the runtime's control queue)."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.worst = 0.0
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.thread_time()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last)
        self.last = now

    def restart(self) -> None:
        self.last, self.worst = None, 0.0


@pytest.fixture
def make_window(qtbot, stack, files):
    engine, vad = stack
    windows = []

    def make(settings: Settings | None = None) -> MainWindow:
        if settings is not None:
            files.save_settings(settings)
        window = MainWindow(lambda post: Runtime(post, files, simulated=True, load_engine=lambda _s: engine, vad=vad))
        qtbot.addWidget(window)
        window.show()
        window.runtime.start()
        assert window.runtime.wait_ready(120)
        qtbot.waitUntil(lambda: window.state.state == "listening", timeout=10000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def _assistant_lines(window):
    return [line for line in window.view.lines if line.role == "assistant"]


def _finished_reply(window):
    lines = _assistant_lines(window)
    return lines[-1] if lines and not lines[-1].live else None


def _wait_heard(qtbot, window, after_ms: int = 300) -> None:
    """Until the simulated room has played all the user said, and `after_ms` more: the room runs
    in real time but falls behind the clock on a loaded machine, and a key released by the clock
    would cut the question short."""
    conversation = window.runtime.conversation
    end = conversation.track.end + 16 * after_ms
    qtbot.waitUntil(lambda: conversation.loop.ticks * 160 >= end, timeout=30000)


def test_push_to_talk_turn_is_spoken_and_shown(qtbot, make_window, speak, files):
    window = make_window(Settings(mode="push-to-talk"))
    probe = StallProbe()
    assert window.talk_button.isEnabled()
    question = speak("What is the capital of France?")
    qtbot.keyPress(window, Qt.Key_Space)  # the held key
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=2000)
    window.runtime.speak(question)
    _wait_heard(qtbot, window)
    qtbot.keyRelease(window, Qt.Key_Space)
    qtbot.waitUntil(lambda: window.state.state == "speaking", timeout=20000)
    # Replies appear while they are spoken.
    qtbot.waitUntil(lambda: any(line.live and line.text for line in window.view.lines), timeout=5000)
    qtbot.waitUntil(
        lambda: _finished_reply(window) is not None and bool(_finished_reply(window).latency_ms), timeout=30000
    )
    user = [line.text for line in window.view.lines if line.role == "user"]
    assert "france" in user[-1].lower()
    assert "paris" in _finished_reply(window).text.lower()
    assert window.latency.text().endswith("ms")
    assert _finished_reply(window).latency_ms > 0  # how long is bench latency's business, not a test's
    qtbot.waitUntil(lambda: window.state.state == "listening", timeout=10000)
    # The GUI thread never stalled for 50 ms during the whole turn.
    assert probe.worst < 0.050, f"event loop busy for {probe.worst * 1000:.0f} ms"
    saved = json.loads(files.history_file.read_text())["entries"]
    assert [e["role"] for e in saved[-2:]] == ["user", "assistant"]
    assert saved[-1]["latency_ms"] > 0
    # The presence indicator heard it speak.
    assert window.presence.output_db > -90


def test_push_to_talk_button(qtbot, make_window, speak):
    window = make_window(Settings(mode="push-to-talk"))
    qtbot.mousePress(window.talk_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=2000)
    window.runtime.speak(speak("What is the capital of Japan?"))
    _wait_heard(qtbot, window)
    qtbot.mouseRelease(window.talk_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: _finished_reply(window) is not None, timeout=40000)
    assert "japan" in [line.text for line in window.view.lines if line.role == "user"][-1].lower()
    assert "tokyo" in _finished_reply(window).text.lower()


def test_always_listening_barge_in_marks_the_reply_interrupted(qtbot, make_window, speak):
    window = make_window(Settings(mode="always-listening"))
    assert not window.talk_button.isEnabled()
    window.runtime.speak(speak("Tell me a long story about a dragon who learns to bake bread."))
    qtbot.waitUntil(lambda: window.state.state == "speaking", timeout=30000)
    qtbot.wait(1500)  # well into the reply
    window.runtime.speak(speak("Wait, stop, what time is it?"))
    qtbot.waitUntil(lambda: any(line.interrupted for line in _assistant_lines(window)), timeout=10000)
    interrupted = next(line for line in _assistant_lines(window) if line.interrupted)
    assert "interrupted" in window.view.bubble(interrupted).meta.text()

    # The interruption became the next turn.
    def interruption_heard():
        users = [line.text.lower() for line in window.view.lines if line.role == "user"]
        return len(users) == 2 and users[-1].strip() != ""  # its words: see bench duplex (double talk)

    try:
        qtbot.waitUntil(interruption_heard, timeout=20000)
    except Exception:
        raise AssertionError(f"lines: {window.view.lines}") from None
    assert window.runtime.history[-1].role in ("user", "assistant")
    assert any(e.interrupted for e in window.runtime.history)


def test_typed_question_gets_a_spoken_answer(qtbot, make_window):
    window = make_window()
    qtbot.keyClicks(window.text_input, "What color is the sky on a clear day?")
    qtbot.keyClick(window.text_input, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.state.state == "speaking", timeout=20000)
    qtbot.waitUntil(lambda: _finished_reply(window) is not None, timeout=30000)
    users = [line.text for line in window.view.lines if line.role == "user"]
    assert users == ["What color is the sky on a clear day?"]  # shown once, as typed
    assert "blue" in _finished_reply(window).text.lower()


def test_about_box_shows_the_version_and_the_licences(qtbot, make_window):
    import tomllib
    from pathlib import Path

    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    qtbot.mouseClick(window.about_button, Qt.LeftButton)
    box = window.findChild(QMessageBox, "about")
    qtbot.waitUntil(box.isVisible, timeout=2000)
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert f"Voice Companion {pyproject['version']}" in box.text()
    assert pyproject["license"] in box.text()
    assert "qwen2.5-coder-0.5b-instruct-q4: Apache-2.0" in box.text()  # the models' licences too
    box.close()


def test_stop_button_silences_the_reply(qtbot, make_window):
    window = make_window()
    window.runtime.say("Tell me a long story about the sea.")
    qtbot.waitUntil(lambda: window.state.state == "speaking", timeout=20000)
    qtbot.mouseClick(window.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.state.state == "listening", timeout=2000)
    qtbot.waitUntil(lambda: any(line.interrupted for line in _assistant_lines(window)), timeout=2000)
    playback = window.runtime.conversation.playback
    played = playback.played
    qtbot.wait(300)
    # At most the fade's last block (the fade is <= 20 ms) was still being handed out; then silence.
    faded = playback.played
    assert faded - played <= playback.device_rate * 0.020, (faded - played, playback.device_rate)
    qtbot.wait(300)
    assert playback.played == faded  # nothing more went out


def test_settings_changes_reach_the_session(qtbot, make_window, files):
    window = make_window()
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    dialog.audio.end_of_turn.setValue(900)
    dialog.audio.sensitivity.setValue(70)
    dialog.audio.noise_box.setChecked(False)
    dialog.voice.emotion_combo.setCurrentIndex(dialog.voice.emotion_combo.findData("cheerful"))
    dialog.voice.pitch.setValue(3)
    dialog.voice.speed.setValue(120)
    dialog.persona.persona.setPlainText("You are Ada, a patient tutor.")
    assert dialog.engine.asr_combo.findData("whisper-base") >= 0
    dialog.engine.asr_combo.setCurrentIndex(dialog.engine.asr_combo.findData("whisper-tiny-en"))
    assert dialog.apply()
    assert window.runtime.wait_ready(120)
    session = window.runtime.conversation.session
    assert session.config.end_of_turn_ms == 900
    assert session.config.threshold == pytest.approx(0.3)
    assert session.style.pitch_semitones > 2.5  # the user's +3, shaped by the emotion
    assert session.style.speed > 1.1
    assert "cheer" in (session.style.instruction or "").lower()
    assert session.style.persona == "You are Ada, a patient tutor."
    saved = json.loads(files.settings_file.read_text())
    assert saved["end_of_turn_ms"] == 900 and saved["noise_suppression"] is False and saved["emotion"] == "cheerful"
    assert saved["asr_model"] == "whisper-tiny-en" and window.runtime.settings.asr_model == "whisper-tiny-en"
    # The mode switch in the window reaches the session too.
    window.ptt_mode_button.click()
    assert window.runtime.wait_ready(30)
    assert window.runtime.conversation.session.mode == Mode.PUSH_TO_TALK
    assert window.talk_button.isEnabled()


def test_preset_crud_and_a_malformed_import(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window()
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    presets = window.runtime.presets
    names = iter(["Mine", "Mine renamed", "Mine copy"])
    monkeypatch.setattr("app.settings_tabs.voice.QInputDialog.getText", lambda *a, **k: (next(names), True))
    monkeypatch.setattr("app.settings_tabs.voice.QMessageBox.question", lambda *a, **k: dialog_yes())

    def dialog_yes():
        from PySide6.QtWidgets import QMessageBox

        return QMessageBox.Yes

    dialog.voice.pitch.setValue(-4)
    dialog.voice.save_preset_as()
    assert presets.get("Mine").pitch == -4
    assert dialog.voice.selected_preset() == "Mine"
    dialog.voice.rename_preset()
    assert "Mine" not in presets.names() and presets.get("Mine renamed").pitch == -4
    dialog.voice.duplicate_preset()
    assert presets.get("Mine copy").pitch == -4
    exported = tmp_path / "out.json"
    dialog.voice.export_preset(str(exported))
    assert json.loads(exported.read_text())["name"] == "Mine copy"
    # Built-ins cannot be renamed or deleted.
    dialog.voice.refresh_presets("Calm")
    assert (
        not dialog.voice.preset_buttons["Delete"].isEnabled() and not dialog.voice.preset_buttons["Rename"].isEnabled()
    )
    # A malformed preset is refused with a message and changes nothing.
    before = {name: presets.get(name) for name in presets.names()}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "voice-companion/preset", "version": 1, "name": "Loud", "speed": 9}))
    dialog.voice.import_preset(str(bad))
    assert "speed" in dialog.message.text()
    assert {name: presets.get(name) for name in presets.names()} == before
    # Apply a preset: its values fill the controls and reach the session on Apply.
    dialog.voice.refresh_presets("Mine copy")
    dialog.voice.apply_preset()
    assert dialog.voice.pitch.value() == -4
    assert dialog.apply() and window.runtime.wait_ready(60)
    assert window.runtime.settings.preset == "Mine copy"
    assert window.runtime.conversation.session.style.pitch_semitones == pytest.approx(-4)
    dialog.voice.refresh_presets("Mine renamed")
    dialog.voice.delete_preset()
    assert "Mine renamed" not in presets.names()


def test_voice_clip_import_and_refusal(qtbot, make_window, speak, tmp_path):
    from core.audio.io import save_wav

    window = make_window()
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    short = tmp_path / "short.wav"
    save_wav(short, speak("Hello there."), 16000)
    dialog.voice.import_voice_clip(str(short))
    qtbot.waitUntil(lambda: dialog.voice.record_button.isEnabled(), timeout=20000)
    assert "at least" in dialog.message.text() and dialog.voice.voice_reference is None
    long = tmp_path / "reader.wav"
    text = (
        "The north wind and the sun were disputing which was the stronger, when a traveller came "
        "along wrapped in a warm cloak. They agreed that the one who first made the traveller take "
        "his cloak off should be considered stronger than the other."
    )
    save_wav(long, speak(text), 16000)
    dialog.voice.import_voice_clip(str(long))
    qtbot.waitUntil(lambda: dialog.voice.record_button.isEnabled(), timeout=30000)
    assert dialog.voice.voice_reference is not None, dialog.message.text()
    assert (window.runtime.files.voices / dialog.voice.voice_reference).exists()
    assert dialog.apply() and window.runtime.wait_ready(120)
    assert window.runtime.conversation.session.voice_profiles is not None


def test_corrupt_settings_are_kept_aside_and_noticed(qtbot, make_window, files):
    files.root.mkdir(parents=True, exist_ok=True)
    files.settings_file.write_text('{"schema": "voice-companion/settings", "version": 1, "mode": ')
    files.history_file.write_text(
        json.dumps(
            {
                "schema": "voice-companion/history",
                "version": 1,
                "entries": [{"role": "user", "text": "Earlier question"}],
            }
        )
    )
    window = make_window()
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=5000)
    assert "settings.json" in window.notice.text() and "kept as" in window.notice.text()
    backups = list(files.root.glob("settings.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text().endswith('"mode": ')
    assert window.runtime.settings == Settings()
    # The history was intact and is shown.
    assert [line.text for line in window.view.lines] == ["Earlier question"]


def test_first_run_installs_from_the_local_packs(qtbot, tmp_path):
    from app.setup_dialog import SetupDialog
    from models.registry import ModelStore

    store = ModelStore(tmp_path / "fresh")
    dialog = SetupDialog(store, ["silero-vad", "piper-joe-medium"])
    qtbot.addWidget(dialog)
    paused = []

    def pause_once(asset_id, done, total):
        if asset_id == "piper-joe-medium" and not paused:
            paused.append(done)
            dialog.toggle()  # Cancel

    dialog.installer.progress.connect(pause_once)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.action.text() == "Resume" and dialog.action.isEnabled(), timeout=60000)
    assert store.status("silero-vad").verified and not store.status("piper-joe-medium").installed
    assert dialog.states["piper-joe-medium"].text() == "paused"
    with qtbot.waitSignal(dialog.accepted, timeout=120000):
        dialog.action.click()  # Resume
    assert store.status("piper-joe-medium").verified
    assert dialog.bars["piper-joe-medium"].value() == 100


@pytest.mark.models  # a real turn through the real models, captured
def test_screenshots_render_without_a_display(tmp_path):
    import subprocess
    import sys

    from PySide6.QtGui import QImage

    out = tmp_path / "shots"
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "--screenshot", str(out)], capture_output=True, text=True, timeout=280
    )
    assert run.returncode == 0, run.stderr[-2000:]
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [
        "main-window.png",
        "settings-audio.png",
        "settings-desktop.png",
        "settings-engine.png",
        "settings-voice.png",
    ]
    image = QImage(str(out / "main-window.png"))
    assert image.width() >= 600 and image.height() >= 600
    # Not a blank picture: many distinct colours (text, meters, the state dot).
    pixels = np.frombuffer(image.convertToFormat(QImage.Format_RGB32).constBits(), np.uint32)
    assert len(np.unique(pixels)) > 50


def test_a_typed_question_before_the_models_load_is_refused_with_a_notice(files):
    from core.events import Notice

    seen = []
    runtime = Runtime(seen.append, files, simulated=True)  # not started: nothing loaded yet
    try:
        assert runtime.say("Hello?") is False
        assert runtime.history == [] and not files.history_file.exists()
        assert any(isinstance(e, Notice) and "loading" in e.message for e in seen)
        assert runtime._typed is False  # the next spoken transcript is still recorded
    finally:
        runtime.shutdown()
