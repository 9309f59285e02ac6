"""The settings pane: one tab each for audio, voice, engine, persona, desktop and data
(app/settings_tabs/). OK/Apply hand the runtime a new Settings composed from the tabs; presets
are saved the moment they are changed. Controls the current engine cannot honour are disabled,
with a tooltip saying why."""

from __future__ import annotations

import logging
from dataclasses import replace

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTabWidget, QVBoxLayout, QWidget

from app.global_key import key_conflict
from app.settings_tabs.audio import AudioTab
from app.settings_tabs.data import DataTab
from app.settings_tabs.desktop import DesktopTab
from app.settings_tabs.engine import EngineTab
from app.settings_tabs.persona import PersonaTab
from app.settings_tabs.voice import VoiceTab
from app.widgets import open_folder
from core.app_backend import Runtime
from core.logs import log_folder
from core.settings import Settings
from models.engine import Capabilities

log = logging.getLogger(__name__)

ERROR_COLOUR = "#d0453a"
SIZE = (620, 560)


class SettingsDialog(QDialog):
    def __init__(self, runtime: Runtime, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.runtime = runtime
        self.settings = runtime.settings
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Settings message")
        say = self.show_message
        self.audio = AudioTab(say)
        self.persona = PersonaTab()
        self.data = DataTab(runtime, say, self._clip_deleted, self._forgotten)
        self.voice = VoiceTab(
            runtime, say, self.persona, self.audio.input_combo.currentData, self.apply, self.data.refresh_clips
        )
        self.engine = EngineTab(runtime.store, say)
        self.desktop = DesktopTab(say, self._bound_key)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.audio, "&Audio")
        self.tabs.addTab(self.voice, "&Voice")
        self.tabs.addTab(self.engine, "&Engine")
        self.tabs.addTab(self.persona, "&Persona")
        self.tabs.addTab(self.desktop, "Des&ktop")
        self.tabs.addTab(self.data, "&Data")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        self.log_button = buttons.addButton("Open &log folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.log_button.setToolTip("The log and crash reports, for when something went wrong")
        self.log_button.clicked.connect(self.open_log_folder)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.load(self.settings)
        self.honour_capabilities(runtime.capabilities)
        self.resize(*SIZE)

    def load(self, s: Settings) -> None:
        for tab in (self.audio, self.desktop, self.engine, self.persona, self.voice):
            tab.load(s)

    def current(self) -> Settings:
        return replace(
            self.settings,
            **self.audio.values(),
            **self.desktop.values(),
            **self.engine.values(self.settings),
            **self.persona.values(),
            **self.voice.values(),
        )

    def apply(self) -> bool:
        settings = self.current()
        conflict = key_conflict(settings.push_to_talk_key, global_key=settings.global_push_to_talk)
        if conflict is not None:
            self.show_message(f"Could not apply the settings: {conflict}.", error=True)
            return False
        try:
            self.settings = settings
            self.runtime.apply(self.settings)
        except (ValueError, OSError) as exc:
            log.warning("could not apply the settings", exc_info=True)
            self.show_message(f"Could not apply the settings: {exc}", error=True)
            return False
        self.show_message("Applied: the next reply uses these settings.")
        return True

    def accept(self) -> None:
        if self.apply():
            super().accept()

    def done(self, result: int) -> None:
        self.audio.stop()
        self.engine.stop()
        super().done(result)

    def open_log_folder(self) -> None:
        folder = log_folder(self.runtime.files.root)
        if not open_folder(folder):
            self.show_message(f"The log is in {folder}")

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR};" if error else "")

    def honour_capabilities(self, caps: Capabilities | None) -> None:
        """Disable what this engine cannot do, saying why (None: not loaded yet, leave all on)."""
        if caps is None:
            return
        self.persona.honour(caps)
        self.voice.honour(caps, self.runtime.can_match_voice)

    def _bound_key(self) -> str:
        """The key the desktop bound for the main window's global key listener (the portal's)."""
        return str(getattr(getattr(self.parent(), "global_key", None), "trigger_description", ""))

    def _clip_deleted(self, name: str) -> None:
        if self.voice.voice_reference == name:
            self.voice.set_clip(None)
        self.settings = replace(self.settings, voice_reference=self.runtime.settings.voice_reference)
        self.voice.refresh_presets()

    def _forgotten(self) -> None:
        self.settings = self.runtime.settings
        self.load(self.settings)
