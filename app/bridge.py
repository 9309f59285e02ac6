"""Core events into the GUI thread: a thread-safe queue drained by a Qt timer.

The core calls `post` from its audio, engine and control threads; the GUI thread empties the queue
every few milliseconds and emits each event as a Qt signal. Meter readings arrive twenty times a
second and only the newest matters, so a batch keeps just the last one.
"""

from __future__ import annotations

import queue

from PySide6.QtCore import QObject, QTimer, Signal

from core.events import Levels

DRAIN_MS = 15


class EventBridge(QObject):
    arrived = Signal(object)  # a core event, on the GUI thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def stop(self) -> None:
        """No more draining (the window is closing); what is left is dropped."""
        self._timer.stop()

    def post(self, event: object) -> None:
        """Any thread: hand an event to the GUI."""
        self._queue.put(event)

    def drain(self) -> None:
        levels = None
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Levels):
                levels = event
            else:
                self.arrived.emit(event)
        if levels is not None:
            self.arrived.emit(levels)
