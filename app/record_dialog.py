"""Recording a voice-matching clip: a countdown, then 10-30 s of speech with a level meter."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets import LevelMeter
from core.audio.device_check import Recorder

COUNTDOWN_S = 3
MIN_S, MAX_S = 10, 30
PROMPT = (
    "Read aloud in your normal voice, for example: “The north wind and the sun were disputing "
    "which was the stronger, when a traveller came along wrapped in a warm cloak.”"
)


class RecordDialog(QDialog):
    def __init__(self, device: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record a voice clip")
        self.device = device
        self.audio: np.ndarray | None = None  # what was recorded, once finished
        self.recorder: Recorder | None = None
        self.count = COUNTDOWN_S
        text = QLabel(PROMPT)
        text.setWordWrap(True)
        self.status = QLabel()
        self.status.setAccessibleName("Recording status")
        font = self.status.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        self.status.setFont(font)
        self.meter = LevelMeter("Recording level")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip(f"Record at least {MIN_S} seconds")
        self.stop_button.clicked.connect(self.finish)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(cancel)
        layout = QVBoxLayout(self)
        for w in (text, self.status, self.meter):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.timer = QTimer(self, interval=100)
        self.timer.timeout.connect(self.tick)
        self._ticks = 0
        self.status.setText(f"Starting in {self.count}…")
        self.timer.start()

    def tick(self) -> None:
        self._ticks += 1
        if self.recorder is None:
            if self._ticks % 10 == 0:
                self.count -= 1
                self.status.setText(f"Starting in {self.count}…")
            if self.count <= 0:
                self.recorder = Recorder(self.device, max_seconds=MAX_S).start()
            return
        if self.recorder.error:
            self.status.setText(f"The microphone failed: {self.recorder.error}")
            self.timer.stop()
            return
        seconds = self.recorder.seconds
        self.meter.set_db(self.recorder.level_db)
        self.status.setText(f"Recording… {seconds:.0f} s" + ("" if seconds >= MIN_S else f" (at least {MIN_S} s)"))
        self.stop_button.setEnabled(seconds >= MIN_S)
        if seconds >= MAX_S:
            self.finish()

    def finish(self) -> None:
        self.timer.stop()
        if self.recorder is not None:
            self.audio = self.recorder.stop()
            self.recorder = None
        self.accept()

    def reject(self) -> None:
        self.timer.stop()
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None
        super().reject()
