"""The Audio tab: microphone and speaker (with a live test meter and a test tone), echo
cancellation and the rest of the processing, voice sensitivity and the end-of-turn silence."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QPushButton, QSlider, QSpinBox, QWidget

from app.settings_tabs.form import Say, percent_range, row, select
from app.tasks import Task
from app.widgets import LevelMeter
from core.settings import END_OF_TURN_RANGE, SENSITIVITY_RANGE, Settings

log = logging.getLogger(__name__)

METER_PERIOD_MS = 50  # the microphone test meter's refresh: 20 updates a second
MIC_TEST_SECONDS = 120  # a forgotten microphone test stops by itself
END_OF_TURN_STEP_MS = 50
SILENT_DB = -90.0  # what the meter shows when the test stops


class AudioTab(QWidget):
    def __init__(self, say: Say, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.say = say
        self.recorder: Any = None
        self._tasks: list[Task] = []
        form = QFormLayout(self)
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
        form.addRow("&Microphone", row(self.input_combo, self.mic_test))
        self.mic_meter = LevelMeter("Microphone test level")
        form.addRow("", self.mic_meter)
        self.tone_button = QPushButton("Play test tone")
        self.tone_button.clicked.connect(self.play_tone)
        form.addRow("&Speaker", row(self.output_combo, self.tone_button))

        self.echo_box = QCheckBox("Echo cancellation (use the laptop's speakers without headphones)")
        self.noise_box = QCheckBox("Noise suppression")
        self.gain_box = QCheckBox("Automatic gain control")
        for box in (self.echo_box, self.noise_box, self.gain_box):
            form.addRow("", box)

        self.sensitivity = QSlider(Qt.Orientation.Horizontal)
        self.sensitivity.setRange(*percent_range(SENSITIVITY_RANGE))
        self.sensitivity.setAccessibleName("Voice sensitivity")
        self.sensitivity.setToolTip("Higher hears quieter speech; lower ignores more background noise")
        self.sensitivity_label = QLabel()
        self.sensitivity.valueChanged.connect(lambda v: self.sensitivity_label.setText(f"{v}%"))
        form.addRow("Voice se&nsitivity", row(self.sensitivity, self.sensitivity_label))
        self.end_of_turn = QSpinBox()
        self.end_of_turn.setRange(*END_OF_TURN_RANGE)
        self.end_of_turn.setSingleStep(END_OF_TURN_STEP_MS)
        self.end_of_turn.setSuffix(" ms")
        self.end_of_turn.setAccessibleName("Longest silence before your turn ends")
        self.end_of_turn.setToolTip(
            "A turn that sounds finished ends after a short silence; one that "
            'sounds unfinished ("I was thinking about, um") waits up to this long.'
        )
        form.addRow("&End of turn at most after", self.end_of_turn)

    def load(self, s: Settings) -> None:
        select(self.input_combo, s.input_device)
        select(self.output_combo, s.output_device)
        self.echo_box.setChecked(s.echo_cancellation)
        self.noise_box.setChecked(s.noise_suppression)
        self.gain_box.setChecked(s.gain_control)
        self.sensitivity.setValue(round(s.vad_sensitivity * 100))
        self.sensitivity_label.setText(f"{self.sensitivity.value()}%")
        self.end_of_turn.setValue(s.end_of_turn_ms)

    def values(self) -> dict[str, Any]:
        return {
            "input_device": self.input_combo.currentData(),
            "output_device": self.output_combo.currentData(),
            "echo_cancellation": self.echo_box.isChecked(),
            "noise_suppression": self.noise_box.isChecked(),
            "gain_control": self.gain_box.isChecked(),
            "vad_sensitivity": self.sensitivity.value() / 100,
            "end_of_turn_ms": self.end_of_turn.value(),
        }

    def stop(self) -> None:
        """Stop the microphone test, if it runs (the dialog is closing)."""
        if self.mic_test.isChecked():
            self.mic_test.setChecked(False)

    def play_tone(self) -> None:
        from core.audio.device_check import play_tone

        device = self.output_combo.currentData()
        self.tone_button.setEnabled(False)

        def played(_result: object, error: str | None) -> None:
            self.tone_button.setEnabled(True)
            self.say(f"Test tone failed: {error}" if error else "Played a test tone.", error=bool(error))

        self._tasks.append(Task(lambda: play_tone(device), played, self).start())

    def test_microphone(self, on: bool) -> None:
        from core.audio.device_check import Recorder

        if on:
            self.recorder = Recorder(self.input_combo.currentData(), max_seconds=MIC_TEST_SECONDS).start()
            self._meter_timer = QTimer(self, interval=METER_PERIOD_MS)
            self._meter_timer.timeout.connect(self._update_mic_meter)
            self._meter_timer.start()
        elif self.recorder is not None:
            self._meter_timer.stop()
            self.recorder.stop()
            self.recorder = None
            self.mic_meter.set_db(SILENT_DB)

    def _update_mic_meter(self) -> None:
        if self.recorder is None:
            return
        if self.recorder.error:
            self.say(f"Microphone test failed: {self.recorder.error}", error=True)
            self.mic_test.setChecked(False)
            return
        self.mic_meter.set_db(self.recorder.level_db)
