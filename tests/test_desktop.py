"""The window as a desktop companion, on the offscreen platform with a quick fake engine and fake
devices (the real-model window is tests/test_gui.py; the real X server, tests/test_xvfb.py):
message bubbles, mute, no microphone, the compact mode, choosing the push-to-talk key, start at
login, and quitting cleanly."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.settings_dialog import SettingsDialog
from app.widgets import ConversationView
from core.settings import Settings
from tests.fakes import FakeDevices

pytestmark = pytest.mark.timeout(120)


def test_bubbles_carry_time_latency_and_the_interrupted_mark_and_copy(qtbot):
    view = ConversationView()
    qtbot.addWidget(view)
    view.add_user("How far is the moon?", at=0.0)
    view.add_reply_text("About 384,000")
    view.add_reply_text("kilometres.")
    live = view.lines[-1]
    assert live.live and view.bubble(live).text.text().endswith("\u2026")  # still being spoken
    view.finish_reply("About 384,000", "interrupted")
    view.set_latency(812.4)
    reply = view.lines[-1]
    assert reply.text == "About 384,000" and reply.interrupted and not reply.live
    meta = view.bubble(reply).meta.text()
    assert "812 ms" in meta and "interrupted" in meta
    assert view.bubble(view.lines[0]).meta.text().count(":") == 1  # a time, HH:MM
    assert view.bubble(view.lines[0]).objectName() == "userBubble"
    view.bubble(view.lines[0]).copy()
    assert QGuiApplication.clipboard().text() == "How far is the moon?"
    # A reply the turn went on from leaves no bubble, nor does the repeated question.
    view.add_user("And the sun?")
    view.add_reply_text("The sun is")
    view.finish_reply("", "discarded", "And the sun?")
    assert [line.text for line in view.lines] == ["How far is the moon?", "About 384,000"]
    assert len(view.bubbles) == 2
    view.clear_lines()
    assert not view.lines and not view.bubbles and not view.placeholder.isHidden()


def test_without_a_microphone_the_window_says_so_and_answers_typed_questions(qtbot, make_window):
    devices = FakeDevices(inputs=[])
    window = make_window(devices)
    qtbot.waitUntil(lambda: window.state.label.text() == "No microphone", timeout=10000)
    assert window.notice.isVisible() and "No microphone" in window.notice.text()
    assert "Error" not in window.notice.text()
    qtbot.keyClicks(window.text_input, "Are you there?")
    qtbot.keyClick(window.text_input, Qt.Key_Return)
    qtbot.waitUntil(
        lambda: any(line.text == "answer to: Are you there?" and not line.live for line in window.view.lines),
        timeout=10000,
    )
    devices.inputs = ["USB headset"]
    qtbot.waitUntil(lambda: window.state.label.text() == "Listening", timeout=10000)
    assert not window.notice.isVisible()  # the notice went with the problem


def test_mute_from_the_button_and_the_key(qtbot, make_window):
    devices = FakeDevices(inputs=["Fake microphone"])
    window = make_window(devices)
    qtbot.waitUntil(lambda: window.state.label.text() == "Listening", timeout=10000)
    audio = lambda: window.runtime.conversation.audio  # noqa: E731
    qtbot.keyClick(window, Qt.Key_M, Qt.ControlModifier)
    qtbot.waitUntil(lambda: audio().muted, timeout=5000)
    assert window.mute_button.isChecked() and window.state.label.text() == "Microphone muted"
    assert window.presence.deaf
    qtbot.mouseClick(window.mute_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not audio().muted, timeout=5000)
    qtbot.waitUntil(lambda: window.state.label.text() == "Listening", timeout=5000)
    assert not window.mute_button.isChecked()


def test_compact_mode_stays_on_top_and_comes_back(qtbot, make_window):
    window = make_window(FakeDevices(inputs=["Fake microphone"]))
    window.resize(800, 720)
    full = window.size()
    qtbot.keyClick(window, Qt.Key_C, Qt.ControlModifier | Qt.ShiftModifier)
    assert window.compact and window.compact_button.isChecked()
    assert window.windowFlags() & Qt.WindowStaysOnTopHint
    assert not window.view.isVisible() and not window.typed_row.isVisible()
    assert window.talk_button.isVisible() and window.presence.isVisible() and window.mute_button.isVisible()
    assert window.height() < full.height()
    window.compact_button.click()
    assert not window.compact and window.view.isVisible()
    assert not window.windowFlags() & Qt.WindowStaysOnTopHint
    assert window.size() == full


def test_the_push_to_talk_key_is_set_by_pressing_it_and_conflicts_are_refused(qtbot, make_window):
    window = make_window(FakeDevices(inputs=["Fake microphone"]))
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    dialog.show()
    capture = dialog.desktop.key_capture
    assert capture.key == "Space"
    for key, modifiers, reason in (
        (Qt.Key_Escape, Qt.NoModifier, "stops the reply"),
        (Qt.Key_M, Qt.ControlModifier, "Ctrl+M mutes"),
        (Qt.Key_X, Qt.NoModifier, "types text"),
    ):
        capture.click()
        assert capture.text() == "Press a key…"
        qtbot.keyClick(capture, key, modifiers)
        assert capture.key == "Space" and reason in dialog.message.text(), dialog.message.text()
    capture.click()
    qtbot.keyClick(capture, Qt.Key_F8)
    assert capture.key == "F8" and capture.text() == "F8"
    assert dialog.apply()
    assert window.runtime.settings.push_to_talk_key == "F8"
    # The new key works in the window.
    dialog.close()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.set_mode("push-to-talk")
    assert window.runtime.wait_ready(10)
    qtbot.keyPress(window, Qt.Key_F8)
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=5000)
    qtbot.keyRelease(window, Qt.Key_F8)
    qtbot.waitUntil(lambda: window.state.state != "hearing", timeout=5000)


def test_a_typing_key_cannot_be_global():
    from app.global_key import key_conflict

    assert key_conflict("Space") is None  # in the window it is fine (not while typing)
    assert "typing in every other window" in key_conflict("Space", global_key=True)
    assert key_conflict("F8", global_key=True) is None and key_conflict("Pause", global_key=True) is None


def test_start_at_login_writes_and_removes_the_autostart_entry(qtbot, make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    window = make_window(FakeDevices(inputs=["Fake microphone"]))
    entry = tmp_path / "config" / "autostart" / "voice-companion.desktop"
    assert not window.runtime.settings.start_at_login and not entry.exists()
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    dialog.desktop.login_box.setChecked(True)
    assert dialog.apply()
    text = entry.read_text()
    assert text.startswith("[Desktop Entry]") and "Exec=" in text and "Type=Application" in text
    dialog.desktop.login_box.setChecked(False)
    assert dialog.apply()
    assert not entry.exists()


def test_quit_stops_speech_ends_every_thread_and_releases_the_devices(qtbot, make_window, files):
    before = set(threading.enumerate())
    devices = FakeDevices(inputs=["Fake microphone"])
    window = make_window(devices, Settings(close_to_tray=True), seconds=8.0)
    window.runtime.say("Tell me a story.")
    qtbot.waitUntil(lambda: window.state.state == "speaking", timeout=10000)
    playback = window.runtime.conversation.playback
    qtbot.waitUntil(lambda: playback.played > playback.device_rate * 2, timeout=30000)  # a quarter of it heard
    ours = set(threading.enumerate()) - before
    assert {"runtime-control", "audio-worker"} <= {t.name for t in ours}
    window.set_muted(True)
    window.quit_app()  # no tray offscreen: nothing keeps it
    for thread in ours:
        thread.join(timeout=2)
    assert [t.name for t in ours if t.is_alive()] == []
    assert devices.mics[-1].stopped and devices.speakers[-1].stopped
    assert window.runtime.conversation is None
    assert files.load_settings()[0] == window.runtime.settings
    assert [e.role for e in files.load_history()[0]] == ["user", "assistant"]
    last = files.load_history()[0][-1]
    said = "answer to: Tell me a story."
    assert last.interrupted and last.text and said.startswith(last.text) and last.text != said  # as far as heard


def test_the_tray_icon_shows_the_state_mute_and_push_to_talk(qtbot, make_window):
    from app.theme import STATE_COLOURS
    from app.tray import MUTED_COLOUR, Tray, state_icon

    def pixels(icon):
        image = icon.pixmap(64, 64).toImage()
        return lambda x, y: image.pixelColor(x, y).name()

    for state in ("listening", "hearing", "thinking", "speaking"):
        at = pixels(state_icon(state, muted=False, push_to_talk=False))
        assert at(14, 32) == STATE_COLOURS[state]  # the disc, away from the centre
    muted = pixels(state_icon("listening", muted=True, push_to_talk=False))
    assert muted(14, 32) == STATE_COLOURS["idle"] and muted(20, 20) == MUTED_COLOUR  # grey, slashed
    assert pixels(state_icon("speaking", muted=True, push_to_talk=False))(14, 32) == STATE_COLOURS["speaking"]
    ptt, plain = pixels(state_icon("listening", False, True)), pixels(state_icon("listening", False, False))
    letter = [(x, y) for x in range(20, 44) for y in range(18, 46) if ptt(x, y) == "#ffffff"]
    assert letter and all(plain(x, y) == STATE_COLOURS["listening"] for x, y in letter)  # a white "P"

    # The tray follows the window: its tooltip and checks (offscreen there is no tray host to show it).
    window = make_window(FakeDevices(inputs=["Fake microphone"]))
    qtbot.waitUntil(lambda: window.state.state == "listening", timeout=10000)
    tray = Tray(window)
    window.set_muted(True)
    tray.refresh()
    assert tray.icon.toolTip() == "Voice Companion: Microphone muted" and tray.mute_action.isChecked()
    tray.ptt_action.trigger()
    assert window.runtime.settings.mode == "push-to-talk" and window.ptt_mode_button.isChecked()
    tray.refresh()
    assert tray.icon.toolTip().endswith("(push to talk)")


def test_clear_history_asks_first_then_empties_the_view_and_the_file(qtbot, make_window, files, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window = make_window(FakeDevices(inputs=["Fake microphone"]))
    qtbot.keyClicks(window.text_input, "Remember this.")
    qtbot.keyClick(window.text_input, Qt.Key_Return)
    qtbot.waitUntil(lambda: [e.role for e in files.load_history()[0]] == ["user", "assistant"], timeout=10000)
    qtbot.waitUntil(lambda: len(window.view.lines) == 2 and not window.view.lines[-1].live, timeout=10000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.No)
    window.clear_button.click()
    assert len(asked) == 1 and len(window.view.lines) == 2 and len(files.load_history()[0]) == 2  # "No" keeps it
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    window.clear_button.click()
    qtbot.waitUntil(lambda: not window.view.lines, timeout=5000)
    assert files.load_history()[0] == [] and window.runtime.history == []


def test_the_presence_moves_with_your_voice(qtbot, make_window):
    from core.audio.io import load_voice
    from tests.conftest import ROOT

    devices = FakeDevices(inputs=["Fake microphone"])
    window = make_window(devices)
    qtbot.waitUntil(lambda: window.state.state == "listening", timeout=10000)
    assert window.presence.input_db < -60
    devices.mics[-1].say(load_voice(ROOT / "assets" / "questions" / "q01.flac"))
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=5000)
    qtbot.waitUntil(lambda: window.presence.input_db > -40 and window.presence._you > 0.3, timeout=5000)
