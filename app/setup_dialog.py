"""First run: the default models are assembled from the installed model packs (or downloaded),
each with its own progress bar; cancel stops after the current step, Resume carries on."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.install import Installer
from models.registry import ModelStore


class SetupDialog(QDialog):
    def __init__(self, store: ModelStore, asset_ids: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Voice Companion: first-time setup")
        self.store = store
        self.pending = list(asset_ids)
        self.errors: dict[str, str] = {}
        intro = QLabel(
            "Setting up the speech and language models on this computer. This happens once; "
            "after it, everything works offline."
        )
        intro.setWordWrap(True)
        grid = QGridLayout()
        self.bars: dict[str, QProgressBar] = {}
        self.states: dict[str, QLabel] = {}
        for row, asset_id in enumerate(asset_ids):
            asset = store.asset(asset_id)
            grid.addWidget(QLabel(f"{asset_id} ({asset.size / 1e6:.0f} MB)"), row, 0)
            bar = QProgressBar()
            bar.setAccessibleName(f"Progress of {asset_id}")
            grid.addWidget(bar, row, 1)
            state = QLabel("waiting")
            grid.addWidget(state, row, 2)
            self.bars[asset_id], self.states[asset_id] = bar, state
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.action = QPushButton("Cancel")
        self.action.clicked.connect(self.toggle)
        quit_button = QPushButton("Quit")
        quit_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.action)
        buttons.addWidget(quit_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.installer = Installer(store, self)
        self.installer.progress.connect(self._progress)
        self.installer.finished.connect(self._finished)
        self.installer.all_done.connect(self._all_done)
        self.resize(560, 100 + 40 * len(asset_ids))

    def start(self) -> None:
        self.errors.clear()
        self.message.setText("")
        self.action.setText("Cancel")
        self.installer.install(self.pending)

    def toggle(self) -> None:
        if self.installer.busy:
            self.installer.cancel()
            self.action.setEnabled(False)
        else:
            self.start()

    def _progress(self, asset_id: str, done: int, total: int) -> None:
        self.bars[asset_id].setValue(round(100 * done / total))
        self.states[asset_id].setText("installing")

    def _finished(self, asset_id: str, error) -> None:
        if error is None:
            self.pending.remove(asset_id)
            self.states[asset_id].setText("ready")
        elif error == "cancelled":
            self.states[asset_id].setText("paused")
        else:
            self.errors[asset_id] = error
            self.states[asset_id].setText("failed")
            self.states[asset_id].setToolTip(error)

    def _all_done(self) -> None:
        self.action.setEnabled(True)
        if not self.pending:
            self.accept()
        elif self.errors:
            self.action.setText("Retry")
            self.message.setText("; ".join(f"{a}: {e}" for a, e in self.errors.items()))
        else:
            self.action.setText("Resume")
            self.message.setText("Paused. Resume continues where it stopped.")

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.pending and not self.installer.busy:
            self.start()

    def reject(self) -> None:
        if self.installer.busy:
            self.installer.cancel()
            self.installer.wait(10)
        super().reject()
