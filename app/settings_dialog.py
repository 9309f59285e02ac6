"""The settings pane: audio devices and processing, turn-taking, engine and models, the voice style
(presets, emotion, speed, pitch, voice matching) and the persona. OK/Apply hand the runtime a new
Settings; presets are saved the moment they are changed. Controls the current engine cannot honour
are disabled, with a tooltip saying why."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QListWidget,
                               QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSlider, QSpinBox,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from app.install import Installer
from app.global_key import Backend, choose_backend, global_key_note, key_conflict
from app.main_window import open_folder
from app.widgets import KeyCapture
from app.tasks import Task
from app.widgets import LevelMeter
from core.companion import compute_options, engine_options
from core.engines import ENGINES
from core.logs import log_folder
from core.runtime import Runtime
from core.settings import END_OF_TURN_RANGE, Settings
from core.style.emotion import EMOTIONS
from core.style.presets import PresetError, parse_preset
from core.style.voice_clips import add_clip, clip_names, import_clip

log = logging.getLogger(__name__)

PREVIEW_TEXT = "This is how I will sound. Do you like it?"
COMPUTE_NAMES = {"auto": "Automatic", "cuda": "CUDA (NVIDIA)", "metal": "Metal (Apple)", "cpu": "CPU"}
VOICES = {"piper-joe-medium": "Joe (Piper, US English)"}

VOICE_MATCH_HELP = ("Moves the reply's pitch, melody range, vocal-tract length and brightness toward "
                    "the speaker in a 5-30 s clip. It is not a voice clone: timbre and accent stay "
                    "the companion's own.")


def _disable_item(combo: QComboBox, index: int, reason: str) -> None:
    item = combo.model().item(index)
    item.setEnabled(False)
    item.setToolTip(reason)


def _select(combo: QComboBox, data) -> None:
    index = combo.findData(data)
    combo.setCurrentIndex(max(0, index))


def _row(*widgets: QWidget) -> QWidget:
    """Widgets side by side as one form field (the first one stretches), so the field's label
    gets a buddy and its keyboard shortcut works."""
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == 0 else 0)
    return holder


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


class SettingsDialog(QDialog):
    def __init__(self, runtime: Runtime, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.runtime = runtime
        self.settings = runtime.settings
        self.voice_reference = self.settings.voice_reference
        self._tasks: list[Task] = []
        self.recorder = None
        self.tabs = QTabWidget()
        self.tabs.addTab(self._audio_tab(), "&Audio")
        self.tabs.addTab(self._voice_tab(), "&Voice")
        self.tabs.addTab(self._engine_tab(), "&Engine")
        self.tabs.addTab(self._persona_tab(), "&Persona")
        self.tabs.addTab(self._desktop_tab(), "Des&ktop")
        self.tabs.addTab(self._data_tab(), "&Data")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Settings message")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Apply | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.Apply).clicked.connect(self.apply)
        self.log_button = buttons.addButton("Open &log folder", QDialogButtonBox.ActionRole)
        self.log_button.setToolTip("The log and crash reports, for when something went wrong")
        self.log_button.clicked.connect(self.open_log_folder)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.load(self.settings)
        self.honour_capabilities(runtime.capabilities)
        self.resize(620, 560)

    # ---- tabs ---------------------------------------------------------------------------

    def _audio_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.input_combo, self.output_combo = QComboBox(), QComboBox()
        self.input_combo.setAccessibleName("Microphone")
        self.output_combo.setAccessibleName("Speaker")
        for combo in (self.input_combo, self.output_combo):
            combo.addItem("System default", None)
        try:
            from core.audio.devices import list_devices

            for device in list_devices():
                if device.max_input_channels:
                    self.input_combo.addItem(device.name, device.name)
                if device.max_output_channels:
                    self.output_combo.addItem(device.name, device.name)
        except Exception as exc:  # no PortAudio: the message says which package is missing
            log.warning("could not list the audio devices", exc_info=True)
            self.input_combo.setToolTip(str(exc))
        self.mic_test = QPushButton("Test microphone")
        self.mic_test.setCheckable(True)
        self.mic_test.toggled.connect(self.test_microphone)
        form.addRow("&Microphone", _row(self.input_combo, self.mic_test))
        self.mic_meter = LevelMeter("Microphone test level")
        form.addRow("", self.mic_meter)
        self.tone_button = QPushButton("Play test tone")
        self.tone_button.clicked.connect(self.play_tone)
        form.addRow("&Speaker", _row(self.output_combo, self.tone_button))

        self.echo_box = QCheckBox("Echo cancellation (use the laptop's speakers without headphones)")
        self.noise_box = QCheckBox("Noise suppression")
        self.gain_box = QCheckBox("Automatic gain control")
        for box in (self.echo_box, self.noise_box, self.gain_box):
            form.addRow("", box)

        self.sensitivity = QSlider(Qt.Horizontal)
        self.sensitivity.setRange(10, 90)
        self.sensitivity.setAccessibleName("Voice sensitivity")
        self.sensitivity.setToolTip("Higher hears quieter speech; lower ignores more background noise")
        self.sensitivity_label = QLabel()
        self.sensitivity.valueChanged.connect(lambda v: self.sensitivity_label.setText(f"{v}%"))
        form.addRow("Voice se&nsitivity", _row(self.sensitivity, self.sensitivity_label))
        self.end_of_turn = QSpinBox()
        self.end_of_turn.setRange(*END_OF_TURN_RANGE)
        self.end_of_turn.setSingleStep(50)
        self.end_of_turn.setSuffix(" ms")
        self.end_of_turn.setAccessibleName("Longest silence before your turn ends")
        self.end_of_turn.setToolTip("A turn that sounds finished ends after a short silence; one that "
                                    "sounds unfinished (\"I was thinking about, um\") waits up to this long.")
        form.addRow("&End of turn at most after", self.end_of_turn)
        return page

    def _desktop_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.key_capture = KeyCapture(lambda name, mods: key_conflict(name, mods, self.global_box.isChecked()))
        self.key_capture.setAccessibleName("Push to talk key: press to change")
        self.key_capture.refused.connect(lambda reason: self.show_message(f"Not that key: {reason}.", error=True))
        self.key_capture.captured.connect(lambda name: self.show_message(f"Push to talk: hold {name}."))
        form.addRow("Push-to-talk &key", self.key_capture)
        self.global_box = QCheckBox("The key works in every window, not only in this one")
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
        return page

    def _global_toggled(self, on: bool) -> None:
        """Say why a global key cannot work here, or why the chosen key cannot be global."""
        choice = choose_backend()
        if choice.backend is Backend.NONE:
            self.global_box.setChecked(False)
            self.global_box.setEnabled(False)
            self.global_note.setText(choice.why_not + ".")
            return
        conflict = key_conflict(self.key_capture.key, global_key=True) if on else None
        # Through the portal the desktop has the last word on the key; say which it bound.
        bound = getattr(getattr(self.parent(), "global_key", None), "trigger_description", "")
        note = global_key_note(choice.backend) + (f" Your desktop bound it to {bound}." if bound else "")
        self.global_note.setText(f"Choose another key: {conflict}." if conflict else note)

    def _voice_tab(self) -> QWidget:
        page = QWidget()
        layout = QHBoxLayout(page)
        left = QVBoxLayout()
        left.addWidget(QLabel("Presets"))
        self.preset_list = QListWidget()
        self.preset_list.setAccessibleName("Presets")
        self.preset_list.currentTextChanged.connect(self._preset_selected)
        left.addWidget(self.preset_list, 1)
        self.preset_buttons = {}
        for label, slot in (("Apply", self.apply_preset), ("Save as…", self.save_preset_as),
                            ("Rename…", self.rename_preset), ("Duplicate…", self.duplicate_preset),
                            ("Delete", self.delete_preset), ("Import…", self.import_preset),
                            ("Export…", self.export_preset)):
            button = QPushButton(label)
            button.clicked.connect(slot)
            self.preset_buttons[label.rstrip("…")] = button
        grid = QVBoxLayout()
        for names in (("Apply", "Save as"), ("Rename", "Duplicate", "Delete"), ("Import", "Export")):
            row = QHBoxLayout()
            for name in names:
                row.addWidget(self.preset_buttons[name])
            grid.addLayout(row)
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
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(50, 200)
        self.speed.setAccessibleName("Speed")
        self.speed_label = QLabel()
        self.speed.valueChanged.connect(lambda v: self.speed_label.setText(f"{v / 100:.2f}×"))
        form.addRow("S&peed", _row(self.speed, self.speed_label))
        self.pitch = QSlider(Qt.Horizontal)
        self.pitch.setRange(-12, 12)
        self.pitch.setAccessibleName("Pitch in semitones")
        self.pitch_label = QLabel()
        self.pitch.valueChanged.connect(lambda v: self.pitch_label.setText(f"{v:+d} st"))
        form.addRow("Pi&tch", _row(self.pitch, self.pitch_label))

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
        form.addRow("", _row(self.record_button, self.import_clip_button, self.clear_clip_button))
        help_label = QLabel(VOICE_MATCH_HELP)
        help_label.setWordWrap(True)
        form.addRow("", help_label)
        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("Apply these settings and hear a sentence")
        self.preview_button.clicked.connect(self.preview)
        form.addRow("", self.preview_button)
        layout.addLayout(form, 3)
        return page

    def _engine_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        form = QFormLayout()
        self.engine_combo = QComboBox()
        self.engine_combo.setAccessibleName("Engine")
        for i, (name, reason) in enumerate(engine_options(self.runtime.store).items()):
            self.engine_combo.addItem(ENGINES[name].label, name)
            if reason:
                _disable_item(self.engine_combo, i, reason)
        form.addRow("E&ngine", self.engine_combo)
        self.chat_combo = QComboBox()
        self.chat_combo.setAccessibleName("Chat model")
        for asset in self.runtime.store.assets():
            if asset.role == "llm":
                self.chat_combo.addItem(asset.id, asset.id)
        form.addRow("&Chat model", self.chat_combo)
        self.asr_combo = QComboBox()
        self.asr_combo.setAccessibleName("Speech recognition model")
        for asset in self.runtime.store.assets():
            if asset.role == "asr":
                self.asr_combo.addItem(asset.id, asset.id)
                self.asr_combo.setItemData(self.asr_combo.count() - 1, asset.description, Qt.ToolTipRole)
        form.addRow("Speech &recognition", self.asr_combo)
        self.compute_combo = QComboBox()
        self.compute_combo.setAccessibleName("Compute device")
        for i, (name, reason) in enumerate(compute_options().items()):
            self.compute_combo.addItem(COMPUTE_NAMES[name], name)
            if reason:
                _disable_item(self.compute_combo, i, reason)
        form.addRow("Compute &device", self.compute_combo)
        # Where each model runs and in which number format, for the choice above (read-only).
        self.device_plan = QLabel()
        self.device_plan.setAccessibleName("Device plan")
        self.device_plan.setWordWrap(True)
        self.device_plan.setTextInteractionFlags(Qt.TextSelectableByMouse)
        form.addRow("Models run on", self.device_plan)
        self.compute_combo.currentIndexChanged.connect(self._show_device_plan)
        self._show_device_plan()
        layout.addLayout(form)
        self.models = QTableWidget(0, 5)
        self.models.setHorizontalHeaderLabels(["Model", "Role", "Size", "Status", ""])
        self.models.setAccessibleName("Models")
        self.models.verticalHeader().setVisible(False)
        self.models.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.models.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        layout.addWidget(self.models, 1)
        self.installer = Installer(self.runtime.store, self)
        self.installer.progress.connect(self._install_progress)
        self.installer.finished.connect(self._install_finished)
        self.refresh_models()
        return page

    def _show_device_plan(self) -> None:
        from models.devices import plan_devices

        compute = self.compute_combo.currentData() or "auto"
        self.device_plan.setText("\n".join(plan_devices(compute).lines()))

    def _persona_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("Who the companion is: added to the chat model's instructions. "
                                "Leave empty for the preset's persona."))
        self.persona = QPlainTextEdit()
        self.persona.setAccessibleName("Persona")
        self.persona.setPlaceholderText("e.g. You are Ada, a patient tutor who loves astronomy.")
        layout.addWidget(self.persona, 1)
        return page

    def _data_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        where = QLabel(f"Your settings, history, presets, voice clips and logs are kept only on this "
                       f"computer, readable by you alone, in {self.runtime.files.root}")
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
        self.forget_button.setToolTip("Erase settings, history, your presets, voice clips and logs; "
                                      "the models stay installed")
        self.forget_button.clicked.connect(self.forget_everything)
        layout.addWidget(_row(self.delete_clip_button, self.clear_history_button, self.forget_button))
        self.refresh_clips()
        return page

    def refresh_clips(self) -> None:
        self.clip_list.clear()
        self.clip_list.addItems(clip_names(self.runtime.files.voices))
        self.delete_clip_button.setEnabled(self.clip_list.count() > 0)

    def _confirm(self, title: str, question: str) -> bool:
        return QMessageBox.question(self, title, question + " This cannot be undone.") == QMessageBox.Yes

    def _erase(self, action, done: str) -> None:
        try:
            action()
        except (KeyError, OSError) as exc:
            log.warning("erasing failed", exc_info=True)
            reason = str(exc).strip("'\"")
            self.show_message(f"Could not erase: {reason}", error=True)
            return
        self.show_message(done)

    def delete_voice_clip(self) -> None:
        item = self.clip_list.currentItem()
        if item is None:
            self.show_message("Choose a voice clip first.", error=True)
            return
        name = item.text()
        if not self._confirm("Delete voice clip", f"Delete the voice clip “{name}” and its profile?"):
            return

        def delete() -> None:
            self.runtime.delete_clip(name)
            if self.voice_reference == name:
                self.set_clip(None)
            self.settings = replace(self.settings, voice_reference=self.runtime.settings.voice_reference)
            self.refresh_clips()
            self.refresh_presets()

        self._erase(delete, f"Deleted the voice clip “{name}”.")

    def clear_history(self) -> None:
        if self._confirm("Clear history", "Erase the whole conversation history, here and on disk?"):
            self._erase(self.runtime.clear_history, "The conversation history is erased.")

    def forget_everything(self) -> None:
        if not self._confirm("Forget everything",
                             "Erase your settings, conversation history, presets, voice clips and logs? "
                             "The models stay installed."):
            return

        def forget() -> None:
            self.runtime.forget_everything()
            self.settings = self.runtime.settings
            self.applied_preset = self.settings.preset
            self.load(self.settings)
            self.refresh_clips()

        self._erase(forget, "Everything of yours is erased; the settings are back to their defaults.")

    # ---- between the controls and Settings ---------------------------------------------------

    def load(self, s: Settings) -> None:
        _select(self.input_combo, s.input_device)
        _select(self.output_combo, s.output_device)
        self.echo_box.setChecked(s.echo_cancellation)
        self.noise_box.setChecked(s.noise_suppression)
        self.gain_box.setChecked(s.gain_control)
        self.sensitivity.setValue(round(s.vad_sensitivity * 100))
        self.sensitivity_label.setText(f"{self.sensitivity.value()}%")
        self.end_of_turn.setValue(s.end_of_turn_ms)
        self.key_capture.set_key(s.push_to_talk_key)
        self.global_box.setChecked(s.global_push_to_talk)
        self._global_toggled(s.global_push_to_talk)
        self.tray_box.setChecked(s.close_to_tray)
        self.login_box.setChecked(s.start_at_login)
        _select(self.engine_combo, s.engine)
        _select(self.chat_combo, s.chat_model)
        _select(self.asr_combo, s.asr_model)
        _select(self.compute_combo, s.compute)
        self.persona.setPlainText(s.persona)
        self.refresh_presets(s.preset)
        preset = self._preset(s.preset)
        self._show_style(s.emotion or (preset.emotion if preset else "neutral"),
                         s.speed if s.speed is not None else (preset.speed if preset else 1.0),
                         s.pitch if s.pitch is not None else (preset.pitch if preset else 0.0))
        self.set_clip(s.voice_reference)

    def _show_style(self, emotion: str, speed: float, pitch: float) -> None:
        _select(self.emotion_combo, emotion)
        self.speed.setValue(round(speed * 100))
        self.pitch.setValue(round(pitch))
        self.speed_label.setText(f"{self.speed.value() / 100:.2f}×")
        self.pitch_label.setText(f"{self.pitch.value():+d} st")

    def current(self) -> Settings:
        return replace(
            self.settings,
            input_device=self.input_combo.currentData(), output_device=self.output_combo.currentData(),
            echo_cancellation=self.echo_box.isChecked(), noise_suppression=self.noise_box.isChecked(),
            gain_control=self.gain_box.isChecked(), vad_sensitivity=self.sensitivity.value() / 100,
            end_of_turn_ms=self.end_of_turn.value(), push_to_talk_key=self.key_capture.key,
            global_push_to_talk=self.global_box.isChecked(), close_to_tray=self.tray_box.isChecked(),
            start_at_login=self.login_box.isChecked(),
            engine=self.engine_combo.currentData(), chat_model=self.chat_combo.currentData() or self.settings.chat_model,
            asr_model=self.asr_combo.currentData() or self.settings.asr_model,
            compute=self.compute_combo.currentData(), persona=self.persona.toPlainText().strip(),
            preset=self.applied_preset, emotion=self.emotion_combo.currentData(),
            speed=self.speed.value() / 100, pitch=float(self.pitch.value()), voice_reference=self.voice_reference,
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
        if self.mic_test.isChecked():
            self.mic_test.setChecked(False)
        if self.installer.busy:
            self.installer.cancel()
            self.installer.wait(10)
        super().done(result)

    def open_log_folder(self) -> None:
        folder = log_folder(self.runtime.files.root)
        if not open_folder(folder):
            self.show_message(f"The log is in {folder}")

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #d0453a;" if error else "")

    def honour_capabilities(self, caps) -> None:
        """Disable what this engine cannot do, saying why (None: not loaded yet, leave all on)."""
        if caps is None:
            return
        if not caps.instruction_styles:
            why = "This engine does not take instructions, so the persona cannot change what it says."
            self.persona.setEnabled(False)
            self.persona.setToolTip(why)
            self.emotion_combo.setToolTip("This engine does not take instructions: an emotion changes "
                                          "only speed, pitch and loudness, not the wording.")
        if not self.runtime.can_match_voice:
            why = "Voice matching needs the engine's own voice profile, which this engine does not offer."
            for widget in (self.record_button, self.import_clip_button, self.voice_combo):
                widget.setEnabled(False)
                widget.setToolTip(why)

    # ---- presets -----------------------------------------------------------------------------

    def _preset(self, name: str):
        try:
            return self.runtime.presets.get(name)
        except KeyError:  # no preset of that name: the answer, not a failure
            return None
        except PresetError:
            log.warning("preset %r is damaged", name, exc_info=True)
            return None

    def refresh_presets(self, select: str | None = None) -> None:
        self.applied_preset = getattr(self, "applied_preset", self.settings.preset)
        self.preset_list.blockSignals(True)
        self.preset_list.clear()
        for name in self.runtime.presets.names():
            label = name + ("  (built in)" if self.runtime.presets.is_built_in(name) else "")
            self.preset_list.addItem(label)
            item = self.preset_list.item(self.preset_list.count() - 1)
            item.setData(Qt.UserRole, name)
            if name == (select or self.applied_preset):
                self.preset_list.setCurrentItem(item)
        self.preset_list.blockSignals(False)
        self._preset_selected()

    def selected_preset(self) -> str | None:
        item = self.preset_list.currentItem()
        return item.data(Qt.UserRole) if item else None

    def _preset_selected(self, *_args) -> None:
        name = self.selected_preset()
        built_in = name is not None and self.runtime.presets.is_built_in(name)
        for key in ("Rename", "Delete"):
            self.preset_buttons[key].setEnabled(name is not None and not built_in)
            self.preset_buttons[key].setToolTip("Built-in presets cannot be changed; duplicate one" if built_in else "")

    def apply_preset(self) -> None:
        name = self.selected_preset()
        preset = self._preset(name) if name else None
        if preset is None:
            return
        self.applied_preset = name
        self._show_style(preset.emotion, preset.speed, preset.pitch)
        self.set_clip(preset.voice_reference.clip if preset.voice_reference else None)
        if preset.persona and not self.persona.toPlainText().strip():
            self.persona.setPlainText(preset.persona)
        self.show_message(f"Preset “{name}” chosen; press Apply or OK.")

    def _preset_from_controls(self, name: str):
        reference = None
        if self.voice_reference:
            from core.style.voice_clips import clip_profile

            reference = {"clip": self.voice_reference,
                         "profile": clip_profile(self.runtime.files.voices, self.voice_reference).to_json()}
        return parse_preset({"schema": "voice-companion/preset", "version": 1, "name": name,
                             "voice": self.voice_combo.currentData(), "emotion": self.emotion_combo.currentData(),
                             "speed": self.speed.value() / 100, "pitch": float(self.pitch.value()),
                             "voice_reference": reference, "persona": self.persona.toPlainText().strip() or None})

    def _ask_name(self, title: str, default: str = "") -> str | None:
        name, ok = QInputDialog.getText(self, title, "Preset name:", text=default)
        return name.strip() if ok and name.strip() else None

    def _preset_action(self, action, success: str, select: str | None = None) -> None:
        """Run a preset change; a preset name it returns is the one selected afterwards."""
        try:
            result = action()
        except (PresetError, KeyError, ValueError, OSError) as exc:
            log.warning("preset change refused", exc_info=True)
            self.show_message(str(exc).strip("'\""), error=True)
            return
        self.refresh_presets(result if isinstance(result, str) else select)
        self.show_message(success)

    def save_preset_as(self) -> None:
        name = self._ask_name("Save preset as")
        if name:
            self._preset_action(lambda: self.runtime.presets.save(self._preset_from_controls(name), overwrite=False),
                                f"Saved preset “{name}”.", name)
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
        if name and QMessageBox.question(self, "Delete preset", f"Delete the preset “{name}”?") == QMessageBox.Yes:
            def delete() -> None:
                self.runtime.presets.delete(name)
                if self.applied_preset == name:
                    self.applied_preset = "Neutral"
            self._preset_action(delete, f"Deleted “{name}”.")

    def import_preset(self, path: str | None = None) -> None:
        path = path or QFileDialog.getOpenFileName(self, "Import preset", "", "Presets (*.json)")[0]
        if path:
            self._preset_action(lambda: self.runtime.presets.import_file(Path(path)).name,
                                f"Imported “{Path(path).name}”.")

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

    def _clip_ready(self, result, error: str | None) -> None:
        self.record_button.setEnabled(True)
        self.import_clip_button.setEnabled(True)
        if error:
            self.show_message(error, error=True)
            return
        self.set_clip(result[0])
        self.refresh_clips()
        self.show_message("Voice clip measured; press Apply to use it.")

    def _measure(self, work) -> None:
        self.record_button.setEnabled(False)
        self.import_clip_button.setEnabled(False)
        self.show_message("Measuring the voice…")
        self._tasks.append(Task(work, self._clip_ready, self).start())

    def import_voice_clip(self, path: str | None = None) -> None:
        path = path or QFileDialog.getOpenFileName(self, "Import a voice clip", "",
                                                   "Audio (*.wav *.flac *.ogg *.mp3)")[0]
        if path:
            self._measure(lambda: import_clip(self.runtime.files.voices, Path(path)))

    def record_clip(self) -> None:
        from app.record_dialog import RecordDialog

        dialog = RecordDialog(self.input_combo.currentData(), self)
        if dialog.exec() == QDialog.Accepted and dialog.audio is not None:
            audio = dialog.audio
            self._measure(lambda: add_clip(self.runtime.files.voices, audio, "recording"))

    def preview(self) -> None:
        if self.apply():
            self.runtime.announce(PREVIEW_TEXT)

    # ---- device checks ------------------------------------------------------------------------

    def play_tone(self) -> None:
        from core.audio.check import play_tone

        device = self.output_combo.currentData()
        self.tone_button.setEnabled(False)

        def played(_result, error: str | None) -> None:
            self.tone_button.setEnabled(True)
            self.show_message(f"Test tone failed: {error}" if error else "Played a test tone.", error=bool(error))

        self._tasks.append(Task(lambda: play_tone(device), played, self).start())

    def test_microphone(self, on: bool) -> None:
        from core.audio.check import Recorder

        if on:
            self.recorder = Recorder(self.input_combo.currentData(), max_seconds=120).start()
            self._meter_timer = QTimer(self, interval=50)
            self._meter_timer.timeout.connect(self._update_mic_meter)
            self._meter_timer.start()
        elif self.recorder is not None:
            self._meter_timer.stop()
            self.recorder.stop()
            self.recorder = None
            self.mic_meter.set_db(-90)

    def _update_mic_meter(self) -> None:
        if self.recorder is None:
            return
        if self.recorder.error:
            self.show_message(f"Microphone test failed: {self.recorder.error}", error=True)
            self.mic_test.setChecked(False)
            return
        self.mic_meter.set_db(self.recorder.level_db)

    # ---- models -----------------------------------------------------------------------------

    def refresh_models(self) -> None:
        store = self.runtime.store
        assets = store.assets()
        self.models.setRowCount(len(assets))
        self._rows = {}
        for row, asset in enumerate(assets):
            self._rows[asset.id] = row
            status = store.status(asset.id)
            text = "verified" if status.verified else "installed, not verified" if status.installed else "not installed"
            for col, value in enumerate((asset.id, asset.role, _size(asset.size), text)):
                item = QTableWidgetItem(value)
                item.setToolTip(f"{asset.description} ({asset.licence})")
                self.models.setItem(row, col, item)
            button = QPushButton("Verify" if status.installed else "Install")
            button.setAccessibleName(f"{button.text()} {asset.id}")
            button.clicked.connect(lambda _c=False, a=asset.id: self.install_model(a))
            self.models.setCellWidget(row, 4, button)

    def install_model(self, asset_id: str) -> None:
        if self.installer.busy:
            self.show_message("One install at a time; wait for the current one.", error=True)
            return
        bar = QProgressBar()
        bar.setAccessibleName(f"Installing {asset_id}")
        self.models.setCellWidget(self._rows[asset_id], 3, bar)
        self.installer.install([asset_id])

    def _install_progress(self, asset_id: str, done: int, total: int) -> None:
        bar = self.models.cellWidget(self._rows.get(asset_id, -1), 3)
        if isinstance(bar, QProgressBar):
            bar.setValue(round(100 * done / total))

    def _install_finished(self, asset_id: str, error) -> None:
        self.models.removeCellWidget(self._rows[asset_id], 3)
        self.refresh_models()
        self.show_message(f"{asset_id}: {error}" if error else f"{asset_id} is installed and verified.",
                          error=bool(error))
