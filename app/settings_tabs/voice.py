"""The Voice tab: presets (apply, save, rename, duplicate, delete, import, export), the voice, its
emotion, speed and pitch, and voice matching from a recorded or imported clip, with a preview."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.settings_tabs.form import Say, percent_range, row, select
from app.settings_tabs.persona import PersonaTab
from app.tasks import Task
from core.app_backend import Runtime
from core.settings import Settings
from core.style.emotion import EMOTIONS
from core.style.presets import PITCH_RANGE, SPEED_RANGE, Preset, PresetError, parse_preset
from core.style.voice_clips import add_clip, import_clip
from models.engine import Capabilities

log = logging.getLogger(__name__)

PREVIEW_TEXT = "This is how I will sound. Do you like it?"
VOICES = {"piper-joe-medium": "Joe (Piper, US English)"}
DEFAULT_PRESET = "Neutral"  # chosen when the applied preset is deleted
VOICE_MATCH_HELP = (
    "Moves the reply's pitch, melody range, vocal-tract length and brightness toward "
    "the speaker in a 5-30 s clip. It is not a voice clone: timbre and accent stay "
    "the companion's own."
)


class VoiceTab(QWidget):
    """`persona`: the Persona tab (a preset carries a persona); `microphone()`: the device a clip
    is recorded from; `apply()`: the dialog's Apply (the preview applies first);
    `on_clip_measured()`: a new clip is in the user's folder."""

    def __init__(
        self,
        runtime: Runtime,
        say: Say,
        persona: PersonaTab,
        microphone: Callable[[], str | None],
        apply: Callable[[], bool],
        on_clip_measured: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.runtime = runtime
        self.say = say
        self.persona = persona
        self.microphone = microphone
        self.apply = apply
        self.on_clip_measured = on_clip_measured
        self.voice_reference: str | None = runtime.settings.voice_reference
        self.applied_preset = runtime.settings.preset
        self._tasks: list[Task] = []
        layout = QHBoxLayout(self)
        left = QVBoxLayout()
        left.addWidget(QLabel("Presets"))
        self.preset_list = QListWidget()
        self.preset_list.setAccessibleName("Presets")
        self.preset_list.currentTextChanged.connect(self._preset_selected)
        left.addWidget(self.preset_list, 1)
        self.preset_buttons: dict[str, QPushButton] = {}
        for label, slot in (
            ("Apply", self.apply_preset),
            ("Save as…", self.save_preset_as),
            ("Rename…", self.rename_preset),
            ("Duplicate…", self.duplicate_preset),
            ("Delete", self.delete_preset),
            ("Import…", self.import_preset),
            ("Export…", self.export_preset),
        ):
            button = QPushButton(label)
            button.clicked.connect(slot)
            self.preset_buttons[label.rstrip("…")] = button
        grid = QVBoxLayout()
        for names in (("Apply", "Save as"), ("Rename", "Duplicate", "Delete"), ("Import", "Export")):
            buttons = QHBoxLayout()
            for name in names:
                buttons.addWidget(self.preset_buttons[name])
            grid.addLayout(buttons)
        left.addLayout(grid)
        layout.addLayout(left, 2)

        form = QFormLayout()
        self.voice_combo = QComboBox()
        for voice_id, label in VOICES.items():
            self.voice_combo.addItem(label, voice_id)
        self.voice_combo.setAccessibleName("Voice")
        form.addRow("V&oice", self.voice_combo)
        self.emotion_combo = QComboBox()
        for name in EMOTIONS:
            self.emotion_combo.addItem(name.capitalize(), name)
        self.emotion_combo.setAccessibleName("Emotion")
        form.addRow("E&motion", self.emotion_combo)
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(*percent_range(SPEED_RANGE))
        self.speed.setAccessibleName("Speed")
        self.speed_label = QLabel()
        self.speed.valueChanged.connect(lambda v: self.speed_label.setText(f"{v / 100:.2f}×"))
        form.addRow("S&peed", row(self.speed, self.speed_label))
        self.pitch = QSlider(Qt.Orientation.Horizontal)
        self.pitch.setRange(round(PITCH_RANGE[0]), round(PITCH_RANGE[1]))
        self.pitch.setAccessibleName("Pitch in semitones")
        self.pitch_label = QLabel()
        self.pitch.valueChanged.connect(lambda v: self.pitch_label.setText(f"{v:+d} st"))
        form.addRow("Pi&tch", row(self.pitch, self.pitch_label))

        self.clip_label = QLabel()
        self.clip_label.setWordWrap(True)
        self.clip_label.setAccessibleName("Voice matching clip")
        self.clip_label.setToolTip(VOICE_MATCH_HELP)
        form.addRow("Match a voice", self.clip_label)
        self.record_button = QPushButton("Record…")
        self.record_button.clicked.connect(self.record_clip)
        self.import_clip_button = QPushButton("Import…")
        self.import_clip_button.clicked.connect(self.import_voice_clip)
        self.clear_clip_button = QPushButton("Clear")
        self.clear_clip_button.clicked.connect(lambda: self.set_clip(None))
        form.addRow("", row(self.record_button, self.import_clip_button, self.clear_clip_button))
        help_label = QLabel(VOICE_MATCH_HELP)
        help_label.setWordWrap(True)
        form.addRow("", help_label)
        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("Apply these settings and hear a sentence")
        self.preview_button.clicked.connect(self.preview)
        form.addRow("", self.preview_button)
        layout.addLayout(form, 3)

    # ---- between the controls and Settings ---------------------------------------------------

    def load(self, s: Settings) -> None:
        self.applied_preset = s.preset
        self.refresh_presets(s.preset)
        preset = self._preset(s.preset)
        self._show_style(
            s.emotion or (preset.emotion if preset else "neutral"),
            s.speed if s.speed is not None else (preset.speed if preset else 1.0),
            s.pitch if s.pitch is not None else (preset.pitch if preset else 0.0),
        )
        self.set_clip(s.voice_reference)

    def values(self) -> dict[str, Any]:
        return {
            "preset": self.applied_preset,
            "emotion": self.emotion_combo.currentData(),
            "speed": self.speed.value() / 100,
            "pitch": float(self.pitch.value()),
            "voice_reference": self.voice_reference,
        }

    def _show_style(self, emotion: str, speed: float, pitch: float) -> None:
        select(self.emotion_combo, emotion)
        self.speed.setValue(round(speed * 100))
        self.pitch.setValue(round(pitch))
        self.speed_label.setText(f"{self.speed.value() / 100:.2f}×")
        self.pitch_label.setText(f"{self.pitch.value():+d} st")

    def honour(self, caps: Capabilities, can_match_voice: bool) -> None:
        if not caps.instruction_styles:
            self.emotion_combo.setToolTip(
                "This engine does not take instructions: an emotion changes "
                "only speed, pitch and loudness, not the wording."
            )
        if not can_match_voice:
            why = "Voice matching needs the engine's own voice profile, which this engine does not offer."
            for widget in (self.record_button, self.import_clip_button, self.voice_combo):
                widget.setEnabled(False)
                widget.setToolTip(why)

    # ---- presets -----------------------------------------------------------------------------

    def _preset(self, name: str) -> Preset | None:
        try:
            return self.runtime.presets.get(name)
        except KeyError:  # no preset of that name: the answer, not a failure
            return None
        except PresetError:
            log.warning("preset %r is damaged", name, exc_info=True)
            return None

    def refresh_presets(self, choose: str | None = None) -> None:
        self.preset_list.blockSignals(True)
        self.preset_list.clear()
        for name in self.runtime.presets.names():
            label = name + ("  (built in)" if self.runtime.presets.is_built_in(name) else "")
            self.preset_list.addItem(label)
            item = self.preset_list.item(self.preset_list.count() - 1)
            item.setData(Qt.ItemDataRole.UserRole, name)
            if name == (choose or self.applied_preset):
                self.preset_list.setCurrentItem(item)
        self.preset_list.blockSignals(False)
        self._preset_selected()

    def selected_preset(self) -> str | None:
        item = self.preset_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _preset_selected(self, *_args: object) -> None:
        name = self.selected_preset()
        built_in = name is not None and self.runtime.presets.is_built_in(name)
        for key in ("Rename", "Delete"):
            self.preset_buttons[key].setEnabled(name is not None and not built_in)
            self.preset_buttons[key].setToolTip("Built-in presets cannot be changed; duplicate one" if built_in else "")

    def apply_preset(self) -> None:
        name = self.selected_preset()
        preset = self._preset(name) if name else None
        if name is None or preset is None:
            return
        self.applied_preset = name
        self._show_style(preset.emotion, preset.speed, preset.pitch)
        self.set_clip(preset.voice_reference.clip if preset.voice_reference else None)
        if preset.persona and not self.persona.text:
            self.persona.persona.setPlainText(preset.persona)
        self.say(f"Preset “{name}” chosen; press Apply or OK.")

    def _preset_from_controls(self, name: str) -> Preset:
        reference = None
        if self.voice_reference:
            from core.style.voice_clips import clip_profile

            reference = {
                "clip": self.voice_reference,
                "profile": clip_profile(self.runtime.files.voices, self.voice_reference).to_json(),
            }
        return parse_preset(
            {
                "schema": "voice-companion/preset",
                "version": 1,
                "name": name,
                "voice": self.voice_combo.currentData(),
                "emotion": self.emotion_combo.currentData(),
                "speed": self.speed.value() / 100,
                "pitch": float(self.pitch.value()),
                "voice_reference": reference,
                "persona": self.persona.text or None,
            }
        )

    def _ask_name(self, title: str, default: str = "") -> str | None:
        name, ok = QInputDialog.getText(self, title, "Preset name:", text=default)
        return name.strip() if ok and name.strip() else None

    def _preset_action(self, action: Callable[[], object], success: str, choose: str | None = None) -> None:
        """Run a preset change; a preset name it returns is the one selected afterwards."""
        try:
            result = action()
        except (PresetError, KeyError, ValueError, OSError) as exc:
            log.warning("preset change refused", exc_info=True)
            self.say(str(exc).strip("'\""), error=True)
            return
        self.refresh_presets(result if isinstance(result, str) else choose)
        self.say(success)

    def save_preset_as(self) -> None:
        name = self._ask_name("Save preset as")
        if name:
            self._preset_action(
                lambda: self.runtime.presets.save(self._preset_from_controls(name), overwrite=False),
                f"Saved preset “{name}”.",
                name,
            )
            self.applied_preset = name if self._preset(name) else self.applied_preset

    def rename_preset(self) -> None:
        old = self.selected_preset()
        new = self._ask_name("Rename preset", old or "")
        if old and new and new != old:

            def rename() -> None:
                self.runtime.presets.rename(old, new)
                if self.applied_preset == old:
                    self.applied_preset = new

            self._preset_action(rename, f"Renamed “{old}” to “{new}”.", new)

    def duplicate_preset(self) -> None:
        old = self.selected_preset()
        new = self._ask_name("Duplicate preset", f"{old} copy" if old else "")
        if old and new:
            self._preset_action(lambda: self.runtime.presets.duplicate(old, new), f"Made “{new}”.", new)

    def delete_preset(self) -> None:
        name = self.selected_preset()
        if (
            name
            and QMessageBox.question(self, "Delete preset", f"Delete the preset “{name}”?")
            == QMessageBox.StandardButton.Yes
        ):

            def delete() -> None:
                self.runtime.presets.delete(name)
                if self.applied_preset == name:
                    self.applied_preset = DEFAULT_PRESET

            self._preset_action(delete, f"Deleted “{name}”.")

    def import_preset(self, path: str | None = None) -> None:
        path = path or QFileDialog.getOpenFileName(self, "Import preset", "", "Presets (*.json)")[0]
        if path:
            self._preset_action(
                lambda: self.runtime.presets.import_file(Path(path)).name, f"Imported “{Path(path).name}”."
            )

    def export_preset(self, path: str | None = None) -> None:
        name = self.selected_preset()
        if not name:
            return
        path = path or QFileDialog.getSaveFileName(self, "Export preset", f"{name}.json", "Presets (*.json)")[0]
        if path:
            self._preset_action(lambda: self.runtime.presets.export(name, Path(path)), f"Exported to {path}.", name)

    # ---- voice matching -------------------------------------------------------------------

    def set_clip(self, name: str | None) -> None:
        self.voice_reference = name
        self.clip_label.setText(name or "Off: the packaged voice as it is")
        self.clear_clip_button.setEnabled(name is not None)

    def _clip_ready(self, result: Any, error: str | None) -> None:
        self.record_button.setEnabled(True)
        self.import_clip_button.setEnabled(True)
        if error:
            self.say(error, error=True)
            return
        self.set_clip(result[0])
        self.on_clip_measured()
        self.say("Voice clip measured; press Apply to use it.")

    def _measure(self, work: Callable[[], object]) -> None:
        self.record_button.setEnabled(False)
        self.import_clip_button.setEnabled(False)
        self.say("Measuring the voice…")
        self._tasks.append(Task(work, self._clip_ready, self).start())

    def import_voice_clip(self, path: str | None = None) -> None:
        path = (
            path or QFileDialog.getOpenFileName(self, "Import a voice clip", "", "Audio (*.wav *.flac *.ogg *.mp3)")[0]
        )
        if path:
            self._measure(lambda: import_clip(self.runtime.files.voices, Path(path)))

    def record_clip(self) -> None:
        from app.record_dialog import RecordDialog

        dialog = RecordDialog(self.microphone(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.audio is not None:
            audio = dialog.audio
            self._measure(lambda: add_clip(self.runtime.files.voices, audio, "recording"))

    def preview(self) -> None:
        if self.apply():
            self.runtime.announce(PREVIEW_TEXT)
