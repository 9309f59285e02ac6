"""The Desktop tab: the push-to-talk key (and whether it works in every window), the tray and
start at login."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QWidget

from app.global_key import Backend, choose_backend, global_key_note, key_conflict
from app.settings_tabs.form import Say
from app.widgets import KeyCapture
from core.settings import Settings


class DesktopTab(QWidget):
    """`bound_key()`: how the desktop bound the global key through the portal ("" when it did not)."""

    def __init__(self, say: Say, bound_key: Callable[[], str] = lambda: "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bound_key = bound_key
        form = QFormLayout(self)
        self.global_box = QCheckBox("The key works in every window, not only in this one")
        self.key_capture = KeyCapture(lambda name, mods: key_conflict(name, mods, self.global_box.isChecked()))
        self.key_capture.setAccessibleName("Push to talk key: press to change")
        self.key_capture.refused.connect(lambda reason: say(f"Not that key: {reason}.", error=True))
        self.key_capture.captured.connect(lambda name: say(f"Push to talk: hold {name}."))
        form.addRow("Push-to-talk &key", self.key_capture)
        self.global_box.setAccessibleName("Global push to talk key")
        self.global_box.toggled.connect(self._global_toggled)
        form.addRow("", self.global_box)
        self.global_note = QLabel()
        self.global_note.setWordWrap(True)
        form.addRow("", self.global_note)
        self.tray_box = QCheckBox("Closing the window keeps the companion running in the tray")
        self.tray_box.setAccessibleName("Close to tray")
        form.addRow("", self.tray_box)
        self.login_box = QCheckBox("Start at login")
        self.login_box.setAccessibleName("Start at login")
        self.login_box.setToolTip("Adds Voice Companion to your desktop's autostart programs")
        form.addRow("", self.login_box)
        from app.tray import Tray

        if not Tray.available():
            self.tray_box.setEnabled(False)
            self.tray_box.setToolTip("This desktop has no tray: closing the window quits")

    def _global_toggled(self, on: bool) -> None:
        """Say why a global key cannot work here, or why the chosen key cannot be global."""
        choice = choose_backend()
        if choice.backend is Backend.NONE:
            self.global_box.setChecked(False)
            self.global_box.setEnabled(False)
            self.global_note.setText(f"{choice.why_not or ''}.")
            return
        conflict = key_conflict(self.key_capture.key, global_key=True) if on else None
        # Through the portal the desktop has the last word on the key; say which it bound.
        bound = self.bound_key()
        note = global_key_note(choice.backend) + (f" Your desktop bound it to {bound}." if bound else "")
        self.global_note.setText(f"Choose another key: {conflict}." if conflict else note)

    def load(self, s: Settings) -> None:
        self.key_capture.set_key(s.push_to_talk_key)
        self.global_box.setChecked(s.global_push_to_talk)
        self._global_toggled(s.global_push_to_talk)
        self.tray_box.setChecked(s.close_to_tray)
        self.login_box.setChecked(s.start_at_login)

    def values(self) -> dict[str, Any]:
        return {
            "push_to_talk_key": self.key_capture.key,
            "global_push_to_talk": self.global_box.isChecked(),
            "close_to_tray": self.tray_box.isChecked(),
            "start_at_login": self.login_box.isChecked(),
        }
