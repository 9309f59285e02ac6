"""Slow work started from the GUI (a test tone, a model install, measuring a voice clip) runs on a
thread of its own; its result or error comes back to the GUI thread as a Qt signal."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Task(QObject):
    done = Signal(object, object)  # (result, error message or None), delivered on the GUI thread

    def __init__(
        self, work: Callable[[], object], on_done: Callable[[object, str | None], None], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.done.connect(on_done)
        self._thread = threading.Thread(target=self._run, args=(work,), name="gui-task", daemon=True)

    def start(self) -> "Task":
        self._thread.start()
        return self

    def _run(self, work: Callable[[], object]) -> None:
        try:
            result, error = work(), None
        except Exception as exc:  # shown to the user by the receiver
            log.exception("background task %s failed", getattr(work, "__qualname__", work))
            result, error = None, str(exc) or type(exc).__name__
        self.done.emit(result, error)

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
