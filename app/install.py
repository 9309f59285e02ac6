"""Model installs from the GUI: one asset at a time on a worker thread, with progress, cancel and
resume (a cancelled hub download keeps its partial file and continues from it next time)."""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Signal

from models.registry import ModelStore

log = logging.getLogger(__name__)


class InstallCancelled(Exception):
    pass


class Installer(QObject):
    progress = Signal(str, int, int)  # asset id, bytes done, bytes total (all files of the asset)
    finished = Signal(str, object)  # asset id, error message or None
    all_done = Signal()  # the run is over: everything installed, failed, or cancelled

    def __init__(self, store: ModelStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def install(self, asset_ids: list[str]) -> None:
        self._cancel.clear()
        self._thread = threading.Thread(target=self._run, args=(list(asset_ids),), name="installer", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, asset_ids: list[str]) -> None:
        try:
            self._install_each(asset_ids)
        finally:
            self.all_done.emit()

    def _install_each(self, asset_ids: list[str]) -> None:
        for asset_id in asset_ids:
            asset = self.store.asset(asset_id)
            total = max(1, asset.size)
            sizes = {f.name: f.size for f in asset.files}
            finished_files: dict[str, int] = {}

            def report(_asset: str, file: str, done: int, _file_total: int) -> None:
                if self._cancel.is_set():
                    raise InstallCancelled()
                finished_files[file] = min(done, sizes.get(file, done))
                self.progress.emit(asset_id, sum(finished_files.values()), total)

            try:
                self.store.install(asset_id, progress=report)
                self.progress.emit(asset_id, total, total)
                self.finished.emit(asset_id, None)
            except InstallCancelled:
                log.info("installing %s: cancelled", asset_id)
                self.finished.emit(asset_id, "cancelled")
                return
            except Exception as exc:  # shown beside the asset; the others still install
                log.exception("installing %s failed", asset_id)
                self.finished.emit(asset_id, str(exc) or type(exc).__name__)
