"""The Data tab: where the user's files are, their voice clips, and erasing (one clip, the
history, or everything but the models)."""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtWidgets import QLabel, QListWidget, QMessageBox, QPushButton, QVBoxLayout, QWidget

from app.settings_tabs.form import Say, row
from core.app_backend import Runtime
from core.style.voice_clips import clip_names

log = logging.getLogger(__name__)


class DataTab(QWidget):
    """`on_clip_deleted(name)` and `on_forgotten()` let the dialog bring its other tabs up to date."""

    def __init__(
        self,
        runtime: Runtime,
        say: Say,
        on_clip_deleted: Callable[[str], None],
        on_forgotten: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.runtime = runtime
        self.say = say
        self.on_clip_deleted = on_clip_deleted
        self.on_forgotten = on_forgotten
        layout = QVBoxLayout(self)
        where = QLabel(
            f"Your settings, history, presets, voice clips and logs are kept only on this "
            f"computer, readable by you alone, in {runtime.files.root}"
        )
        where.setWordWrap(True)
        layout.addWidget(where)
        layout.addWidget(QLabel("Voice clips (recordings of a voice, for voice matching)"))
        self.clip_list = QListWidget()
        self.clip_list.setAccessibleName("Voice clips")
        layout.addWidget(self.clip_list, 1)
        self.delete_clip_button = QPushButton("Delete clip…")
        self.delete_clip_button.setToolTip("Delete the recording and its measured profile")
        self.delete_clip_button.clicked.connect(self.delete_voice_clip)
        self.clear_history_button = QPushButton("Clear history…")
        self.clear_history_button.setToolTip("Erase every transcript, here and in the main window")
        self.clear_history_button.clicked.connect(self.clear_history)
        self.forget_button = QPushButton("Forget everything…")
        self.forget_button.setToolTip(
            "Erase settings, history, your presets, voice clips and logs; the models stay installed"
        )
        self.forget_button.clicked.connect(self.forget_everything)
        layout.addWidget(row(self.delete_clip_button, self.clear_history_button, self.forget_button))
        self.refresh_clips()

    def refresh_clips(self) -> None:
        self.clip_list.clear()
        self.clip_list.addItems(clip_names(self.runtime.files.voices))
        self.delete_clip_button.setEnabled(self.clip_list.count() > 0)

    def _confirm(self, title: str, question: str) -> bool:
        return QMessageBox.question(self, title, question + " This cannot be undone.") == QMessageBox.StandardButton.Yes

    def _erase(self, action: Callable[[], object], done: str) -> None:
        try:
            action()
        except (KeyError, OSError) as exc:
            log.warning("erasing failed", exc_info=True)
            reason = str(exc).strip("'\"")
            self.say(f"Could not erase: {reason}", error=True)
            return
        self.say(done)

    def delete_voice_clip(self) -> None:
        item = self.clip_list.currentItem()
        if item is None:
            self.say("Choose a voice clip first.", error=True)
            return
        name = item.text()
        if not self._confirm("Delete voice clip", f"Delete the voice clip “{name}” and its profile?"):
            return

        def delete() -> None:
            self.runtime.delete_clip(name)
            self.on_clip_deleted(name)
            self.refresh_clips()

        self._erase(delete, f"Deleted the voice clip “{name}”.")

    def clear_history(self) -> None:
        if self._confirm("Clear history", "Erase the whole conversation history, here and on disk?"):
            self._erase(self.runtime.clear_history, "The conversation history is erased.")

    def forget_everything(self) -> None:
        if not self._confirm(
            "Forget everything",
            "Erase your settings, conversation history, presets, voice clips and logs? The models stay installed.",
        ):
            return

        def forget() -> None:
            self.runtime.forget_everything()
            self.on_forgotten()
            self.refresh_clips()

        self._erase(forget, "Everything of yours is erased; the settings are back to their defaults.")
