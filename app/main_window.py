"""The main window: the conversation as message bubbles, what state the companion is in, its
presence (moving with its voice and yours), push-to-talk (also from any window: app/global_key.py),
the mode switch, microphone mute, stop, a compact always-on-top mode, and a text box for when
speaking is not an option; the tray icon (app/tray.py) when the desktop has a tray. It only shows
core events and calls the runtime; no audio or model work happens on this thread."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.about import show_about
from app.bridge import EventBridge
from app.global_key import global_key_unavailable, key_conflict, start_global_key
from app.tray import Tray
from app.widgets import ConversationView, Presence, StateIndicator, open_folder
from core.events import (
    AssistantText,
    AudioStatus,
    EngineReady,
    HistoryCleared,
    Levels,
    Notice,
    ReplyFinished,
    StateChanged,
    TurnLatency,
    UserTranscript,
)
from core.logs import log_folder
from core.app_backend import Runtime

log = logging.getLogger(__name__)

MUTE_KEY = "Ctrl+M"
COMPACT_KEY = "Ctrl+Shift+C"
QUIT_KEY = "Ctrl+Q"


def qt_key(name: str) -> Qt.Key:
    """The Qt key a push-to-talk key name stands for ("F8" -> Qt.Key_F8); Space when unknown."""
    sequence = QKeySequence.fromString(name, QKeySequence.PortableText)
    return sequence[0].key() if sequence.count() == 1 else Qt.Key_Space


class MainWindow(QMainWindow):
    def __init__(self, runtime_factory, parent: QWidget | None = None) -> None:
        """`runtime_factory(on_event) -> Runtime`: the window owns the bridge the runtime posts to."""
        super().__init__(parent)
        self.setWindowTitle("Voice Companion")
        self.bridge = EventBridge(self)
        self.runtime: Runtime = runtime_factory(self.bridge.post)
        self.bridge.arrived.connect(self.on_event)
        self._ptt_down = False
        self.muted = False
        self.microphone_present = True
        self._quitting = False
        self._shut_down = False
        self._full_geometry = None
        self.global_key = None  # the listener (GlobalKey, or PortalKey on Wayland) while the key is global
        self.global_key_problem: str | None = None  # why the key is not global now (None: it is, or off)
        self._build()
        self.tray = Tray(self) if Tray.available() else None
        if self.tray is not None:
            self.tray.show()
        self.show_history()
        self.set_mode_buttons(self.runtime.settings.mode)
        self.apply_global_key()

    # ---- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget()
        root = QVBoxLayout(central)

        top = QHBoxLayout()
        self.state = StateIndicator()
        top.addWidget(self.state)
        top.addStretch(1)
        self.always_button = QPushButton("Always listening")
        self.ptt_mode_button = QPushButton("Push to talk")
        self.mode_group = QButtonGroup(self)
        for button, mode in ((self.always_button, "always-listening"), (self.ptt_mode_button, "push-to-talk")):
            button.setCheckable(True)
            button.setAccessibleName(f"Mode: {button.text()}")
            button.setStyleSheet(
                "QPushButton:checked { background: palette(highlight); color: palette(highlighted-text); }"
            )
            self.mode_group.addButton(button)
            button.clicked.connect(lambda _checked=False, m=mode: self.set_mode(m))
            top.addWidget(button)
        self.mute_button = QPushButton("Mute")
        self.mute_button.setCheckable(True)
        self.mute_button.setAccessibleName("Mute the microphone")
        self.mute_button.setToolTip(f"Nothing the microphone hears reaches the companion ({MUTE_KEY})")
        self.mute_button.setStyleSheet("QPushButton:checked { background: #d0453a; color: white; }")
        self.mute_button.toggled.connect(self.set_muted)
        top.addWidget(self.mute_button)
        self.compact_button = QPushButton("Compact")
        self.compact_button.setCheckable(True)
        self.compact_button.setAccessibleName("Compact window, always on top")
        self.compact_button.setToolTip(f"A small window that stays above the others ({COMPACT_KEY})")
        self.compact_button.toggled.connect(self.set_compact)
        top.addWidget(self.compact_button)
        self.clear_button = QPushButton("Clear history…")
        self.clear_button.setAccessibleName("Clear the conversation history")
        self.clear_button.setToolTip("Erase every transcript this app keeps, here and on disk")
        self.clear_button.clicked.connect(self.clear_history)
        top.addWidget(self.clear_button)
        self.settings_button = QPushButton("Settings")
        self.settings_button.setAccessibleName("Open settings")
        self.settings_button.clicked.connect(self.open_settings)
        top.addWidget(self.settings_button)
        self.about_button = QPushButton("About")
        self.about_button.setAccessibleName("About Voice Companion: version and licences")
        self.about_button.clicked.connect(lambda: show_about(self))
        top.addWidget(self.about_button)
        root.addLayout(top)

        # A warning or error notice comes with the way to the log beside it: the details are there.
        self.open_log_action = QAction("Open &log folder", self)
        self.open_log_action.setToolTip("The log and crash reports, for when something went wrong")
        self.open_log_action.triggered.connect(self.open_log_folder)
        self.addAction(self.open_log_action)
        self.notice_bar = QWidget()
        bar = QHBoxLayout(self.notice_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Notice")
        self.notice.setStyleSheet("QLabel { background: #f6d88a; color: #222; padding: 6px; border-radius: 4px; }")
        bar.addWidget(self.notice, 1)
        self.log_button = QToolButton()
        self.log_button.setDefaultAction(self.open_log_action)
        bar.addWidget(self.log_button)
        self._set_notice_visible(False)
        root.addWidget(self.notice_bar)

        self.view = ConversationView()
        root.addWidget(self.view, 1)

        self.typed_row = QWidget()
        typed = QHBoxLayout(self.typed_row)
        typed.setContentsMargins(0, 0, 0, 0)
        self.text_input = QLineEdit()
        self.text_input.setPlaceholderText("Or type a question and press Enter")
        self.text_input.setAccessibleName("Typed question")
        self.text_input.returnPressed.connect(self.send_text)
        typed.addWidget(self.text_input, 1)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send_text)
        typed.addWidget(self.send_button)
        root.addWidget(self.typed_row)

        talk = QHBoxLayout()
        self.presence = Presence()
        talk.addWidget(self.presence)
        self.talk_button = QPushButton()
        self.talk_button.setMinimumHeight(self.fontMetrics().height() * 3)
        self.talk_button.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        font = self.talk_button.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.talk_button.setFont(font)
        self.talk_button.pressed.connect(self.press)
        self.talk_button.released.connect(self.release)
        talk.addWidget(self.talk_button, 1)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setMinimumHeight(self.talk_button.minimumHeight())
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.setAccessibleName("Stop the reply")
        self.stop_button.clicked.connect(self.runtime.stop_reply)
        talk.addWidget(self.stop_button)
        root.addLayout(talk)
        QShortcut(QKeySequence(Qt.Key_Escape), self, activated=self.runtime.stop_reply)
        QShortcut(QKeySequence(MUTE_KEY), self, activated=self.mute_button.toggle)
        QShortcut(QKeySequence(COMPACT_KEY), self, activated=self.compact_button.toggle)
        QShortcut(QKeySequence(QUIT_KEY), self, activated=self.quit_app)
        # Hidden in the compact mode: all but the state, the presence and the talk controls.
        self.full_only = [
            self.always_button,
            self.ptt_mode_button,
            self.clear_button,
            self.settings_button,
            self.about_button,
            self.view,
            self.typed_row,
        ]

        self.setCentralWidget(central)
        self.latency = QLabel("")
        self.latency.setAccessibleName("Last response time")
        self.latency.setToolTip("From the end of your speech to the first sound of the reply")
        self.statusBar().addPermanentWidget(self.latency)
        self.resize(640, 720)
        QApplication.instance().installEventFilter(self)

    # ---- push-to-talk ---------------------------------------------------------------------

    def press(self) -> None:
        if self.runtime.settings.mode == "push-to-talk" and not self._ptt_down:
            self._ptt_down = True
            self.talk_button.setDown(True)
            self.runtime.press()

    def release(self) -> None:
        if self._ptt_down:
            self._ptt_down = False
            self.talk_button.setDown(False)
            self.runtime.release()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        """The push-to-talk key, held, anywhere in this window except where text is typed."""
        if obj is self and event.type() == QEvent.WindowDeactivate:
            self.release()  # the key's release will go to another window: the turn ends here
        if event.type() in (QEvent.KeyPress, QEvent.KeyRelease) and self.isActiveWindow():
            key = qt_key(self.runtime.settings.push_to_talk_key)
            typing = isinstance(QApplication.focusWidget(), (QLineEdit, QTextEdit, QPlainTextEdit))
            if event.key() == key and not typing and self.runtime.settings.mode == "push-to-talk":
                if not event.isAutoRepeat():
                    self.press() if event.type() == QEvent.KeyPress else self.release()
                return True
        return super().eventFilter(obj, event)

    # ---- actions ----------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        self.release()
        if mode != self.runtime.settings.mode:
            self.runtime.update(mode=mode)
        self.set_mode_buttons(mode)

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone (the button, Ctrl+M, the tray). Shown at once; the core's
        AudioStatus confirms it."""
        if muted != self.muted:
            self.muted = muted
            self.runtime.set_muted(muted)
        self._show_input()

    def _show_input(self) -> None:
        self.mute_button.blockSignals(True)
        self.mute_button.setChecked(self.muted)
        self.mute_button.blockSignals(False)
        self.mute_button.setText("Unmute" if self.muted else "Mute")
        self.state.set_input(self.microphone_present, self.muted)
        self.presence.set_state(self.state.state, self.muted or not self.microphone_present)
        if self.tray is not None:
            self.tray.refresh()

    def set_compact(self, compact: bool) -> None:
        """A small window that stays on top: state, presence, mute and the talk button."""
        if compact == (self._full_geometry is not None):
            return
        if compact:
            self._full_geometry = self.geometry()
        for widget in self.full_only:
            widget.setVisible(not compact)
        self.setWindowFlag(Qt.WindowStaysOnTopHint, compact)
        self.show()  # changing the flags hides the window
        if compact:
            self.resize(self.minimumSizeHint())
        else:
            self.setGeometry(self._full_geometry)
            self._full_geometry = None
        self.compact_button.blockSignals(True)
        self.compact_button.setChecked(compact)
        self.compact_button.blockSignals(False)

    @property
    def compact(self) -> bool:
        return self._full_geometry is not None

    def bring_back(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    # ---- the global push-to-talk key ------------------------------------------------------

    def apply_global_key(self) -> None:
        """Start, restart or stop the global key's listener to match the settings; where there
        can be none, `global_key_problem` says why (the settings pane shows it)."""
        settings = self.runtime.settings
        wanted = settings.global_push_to_talk
        if self.global_key is not None and (not wanted or self.global_key.name != settings.push_to_talk_key):
            self.global_key.stop()
            self.global_key = None
        self.global_key_problem = None
        if not wanted or self.global_key is not None:
            return
        self.global_key_problem = global_key_unavailable() or key_conflict(settings.push_to_talk_key, global_key=True)
        if self.global_key_problem is not None:
            return
        runtime, bridge = self.runtime, self.bridge

        # These run on the listener's thread: they only put jobs on the runtime's control queue
        # (a problem goes to the window as a notice through the bridge's queue).
        def pressed() -> None:
            if runtime.settings.mode == "push-to-talk":
                runtime.press()

        def failed(why: str) -> None:
            bridge.post(
                Notice(
                    "warning",
                    f"The push-to-talk key no longer works in every window: {why}. "
                    "It works while this window has the focus.",
                )
            )

        try:
            self.global_key = start_global_key(settings.push_to_talk_key, pressed, runtime.release, failed)
        except Exception as exc:  # pynput's backends and the portal raise their own errors (no X RECORD, no session)
            log.warning("the global push-to-talk key did not start", exc_info=True)
            self.global_key_problem = f"the global key did not start ({type(exc).__name__}: {exc})"
            self.show_notice("warning", f"{self.global_key_problem}; it works while this window has the focus")

    def set_mode_buttons(self, mode: str) -> None:
        ptt = mode == "push-to-talk"
        self.ptt_mode_button.setChecked(ptt)
        self.always_button.setChecked(not ptt)
        key = self.runtime.settings.push_to_talk_key
        self.talk_button.setEnabled(ptt)
        self.talk_button.setText(f"Hold to talk ({key})" if ptt else "Listening: just speak")
        self.talk_button.setAccessibleName("Hold to talk" if ptt else "Push to talk is off")
        self.talk_button.setToolTip(
            f"Hold the button or the {key} key while you speak" if ptt else "Switch to push to talk to use this button"
        )

    def send_text(self) -> None:
        text = self.text_input.text().strip()
        if text and self.runtime.say(text):
            self.text_input.clear()
            self.view.add_user(text)

    def open_settings(self) -> None:
        from app.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.runtime, self)
        dialog.exec()
        self.set_mode_buttons(self.runtime.settings.mode)
        self.apply_global_key()

    def clear_history(self) -> None:
        """Erase the history, file and view, once the user confirms."""
        answer = QMessageBox.question(
            self,
            "Clear history",
            "Erase the whole conversation history, from this window and from disk? This cannot be undone.",
        )
        if answer != QMessageBox.Yes:
            return
        try:
            self.runtime.clear_history()
        except OSError as exc:
            log.warning("could not clear the history", exc_info=True)
            self.show_notice("error", f"could not erase the history file ({exc.strerror or exc})")
            return
        self.statusBar().showMessage("The conversation history is erased.", 5000)

    def show_history(self) -> None:
        for entry in self.runtime.history[-50:]:
            if entry.role == "user":
                self.view.add_user(entry.text, at=entry.at)
            else:
                self.view.add_reply_text(entry.text)
                self.view.lines[-1].at = entry.at
                self.view.finish_reply(entry.text, "interrupted" if entry.interrupted else "complete")
                if entry.latency_ms is not None:
                    self.view.set_latency(entry.latency_ms)

    def show_notice(self, level: str, message: str) -> None:
        if level == "info":
            self.statusBar().showMessage(message, 5000)
            return
        self.notice.setText(("Error: " if level == "error" else "") + message)
        self._set_notice_visible(True)
        self.statusBar().showMessage(message, 10000)

    def _set_notice_visible(self, visible: bool) -> None:
        self.notice.setVisible(visible)
        self.notice_bar.setVisible(visible)

    def log_folder(self) -> Path:
        return log_folder(self.runtime.files.root)

    def open_log_folder(self) -> None:
        folder = self.log_folder()
        if not open_folder(folder):  # no file manager to hand it to: at least say where it is
            self.statusBar().showMessage(f"The log is in {folder}", 20000)

    # ---- core events --------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        if isinstance(event, StateChanged):
            self.state.set_state(event.state)
            self.presence.set_state(event.state, self.muted or not self.microphone_present)
            if self.tray is not None:
                self.tray.refresh()
        elif isinstance(event, Levels):
            self.presence.set_levels(event.input_db, event.output_db)
        elif isinstance(event, AudioStatus):
            self.microphone_present = event.microphone is not None
            self.muted = event.muted
            self._show_input()
            if self.microphone_present and self.notice.text().startswith("No microphone"):
                self._set_notice_visible(False)
        elif isinstance(event, UserTranscript):
            self.view.add_user(event.text)
        elif isinstance(event, AssistantText):
            self.view.add_reply_text(event.delta)
        elif isinstance(event, ReplyFinished):
            self.view.finish_reply(event.text, event.reason, event.transcript)
        elif isinstance(event, TurnLatency):
            self.view.set_latency(event.response)
            self.latency.setText(f"{event.response:.0f} ms")
        elif isinstance(event, Notice):
            self.show_notice(event.level, event.message)
        elif isinstance(event, HistoryCleared):
            self.view.clear_lines()
            self.latency.setText("")
        elif isinstance(event, EngineReady):
            self.statusBar().showMessage("Ready", 3000)
            if self.notice.text().startswith("Error:"):
                self._set_notice_visible(False)

    # ---- closing and quitting ---------------------------------------------------------------

    def closeEvent(self, event) -> None:  # noqa: N802
        """Closing the window keeps the companion in the tray (when there is one and the setting
        says so; the first time, a notice says where it went); otherwise it quits."""
        if not self._quitting and self.tray is not None and self.runtime.settings.close_to_tray:
            event.ignore()
            self.hide()
            self.tray.refresh()
            if not self.runtime.settings.tray_notice_shown:
                self.tray.icon.showMessage(
                    "Voice Companion is still running",
                    "It keeps listening here. Quit from this icon's menu; Settings → Desktop turns this off.",
                )
                self.runtime.update(tray_notice_shown=True)
            return
        self.shut_down()
        super().closeEvent(event)

    def quit_app(self) -> None:
        """Quit (the tray's Quit, Ctrl+Q): speech stops, every thread ends, the devices close."""
        self._quitting = True
        self.close()
        QApplication.instance().quit()

    def shut_down(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        QApplication.instance().removeEventFilter(self)
        if self.global_key is not None:
            self.global_key.stop()
            self.global_key = None
        self.runtime.shutdown()
        self.bridge.stop()
        if self.tray is not None:
            self.tray.hide()
