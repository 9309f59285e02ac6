"""The Engine tab: the engine, the chat and speech recognition models, the compute device with
where each model would run, and every model's status with an install/verify button."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.install import Installer
from app.settings_tabs.form import Say, disable_item, select
from core.engines import ENGINES, compute_options, engine_options
from core.settings import Settings
from models.registry import ModelStore

COMPUTE_NAMES = {"auto": "Automatic", "cuda": "CUDA (NVIDIA)", "metal": "Metal (Apple)", "cpu": "CPU"}
INSTALLER_WAIT_S = 10  # how long closing the dialog waits for a cancelled install to stop


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


class EngineTab(QWidget):
    def __init__(self, store: ModelStore, say: Say, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.say = say
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.engine_combo = QComboBox()
        self.engine_combo.setAccessibleName("Engine")
        for i, (name, reason) in enumerate(engine_options(store).items()):
            self.engine_combo.addItem(ENGINES[name].label, name)
            if reason:
                disable_item(self.engine_combo, i, reason)
        form.addRow("E&ngine", self.engine_combo)
        self.chat_combo = QComboBox()
        self.chat_combo.setAccessibleName("Chat model")
        for asset in store.assets():
            if asset.role == "llm":
                self.chat_combo.addItem(asset.id, asset.id)
        form.addRow("&Chat model", self.chat_combo)
        self.asr_combo = QComboBox()
        self.asr_combo.setAccessibleName("Speech recognition model")
        for asset in store.assets():
            if asset.role == "asr":
                self.asr_combo.addItem(asset.id, asset.id)
                self.asr_combo.setItemData(self.asr_combo.count() - 1, asset.description, Qt.ItemDataRole.ToolTipRole)
        form.addRow("Speech &recognition", self.asr_combo)
        self.compute_combo = QComboBox()
        self.compute_combo.setAccessibleName("Compute device")
        for i, (name, reason) in enumerate(compute_options().items()):
            self.compute_combo.addItem(COMPUTE_NAMES[name], name)
            if reason:
                disable_item(self.compute_combo, i, reason)
        form.addRow("Compute &device", self.compute_combo)
        # Where each model runs and in which number format, for the choice above (read-only).
        self.device_plan = QLabel()
        self.device_plan.setAccessibleName("Device plan")
        self.device_plan.setWordWrap(True)
        self.device_plan.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Models run on", self.device_plan)
        self.compute_combo.currentIndexChanged.connect(self._show_device_plan)
        self._show_device_plan()
        layout.addLayout(form)
        self.models = QTableWidget(0, 5)
        self.models.setHorizontalHeaderLabels(["Model", "Role", "Size", "Status", ""])
        self.models.setAccessibleName("Models")
        self.models.verticalHeader().setVisible(False)
        self.models.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.models.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.models, 1)
        self.installer = Installer(store, self)
        self.installer.progress.connect(self._install_progress)
        self.installer.finished.connect(self._install_finished)
        self.refresh_models()

    def _show_device_plan(self) -> None:
        from models.devices import plan_devices

        compute = self.compute_combo.currentData() or "auto"
        self.device_plan.setText("\n".join(plan_devices(compute).lines()))

    def load(self, s: Settings) -> None:
        select(self.engine_combo, s.engine)
        select(self.chat_combo, s.chat_model)
        select(self.asr_combo, s.asr_model)
        select(self.compute_combo, s.compute)

    def values(self, s: Settings) -> dict[str, Any]:
        """The engine choices; a model list that is empty here keeps the setting `s` had."""
        return {
            "engine": self.engine_combo.currentData(),
            "chat_model": self.chat_combo.currentData() or s.chat_model,
            "asr_model": self.asr_combo.currentData() or s.asr_model,
            "compute": self.compute_combo.currentData(),
        }

    def stop(self) -> None:
        """Cancel an install in progress (the dialog is closing)."""
        if self.installer.busy:
            self.installer.cancel()
            self.installer.wait(INSTALLER_WAIT_S)

    def refresh_models(self) -> None:
        assets = self.store.assets()
        self.models.setRowCount(len(assets))
        self._rows = {}
        for row, asset in enumerate(assets):
            self._rows[asset.id] = row
            status = self.store.status(asset.id)
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
            self.say("One install at a time; wait for the current one.", error=True)
            return
        bar = QProgressBar()
        bar.setAccessibleName(f"Installing {asset_id}")
        self.models.setCellWidget(self._rows[asset_id], 3, bar)
        self.installer.install([asset_id])

    def _install_progress(self, asset_id: str, done: int, total: int) -> None:
        bar = self.models.cellWidget(self._rows.get(asset_id, -1), 3)
        if isinstance(bar, QProgressBar):
            bar.setValue(round(100 * done / total))

    def _install_finished(self, asset_id: str, error: object) -> None:
        self.models.removeCellWidget(self._rows[asset_id], 3)
        self.refresh_models()
        self.say(f"{asset_id}: {error}" if error else f"{asset_id} is installed and verified.", error=bool(error))
