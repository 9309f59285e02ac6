"""The tray icon: the companion's state at a glance, and a menu to show or hide the window, mute
the microphone, switch between push-to-talk and always listening, stop speaking and quit.
Its actions are the window's own; it holds no state of its own."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.theme import STATE_COLOURS
from app.widgets import status_text

MUTED_COLOUR = "#d0453a"


def state_icon(state: str, muted: bool, push_to_talk: bool, microphone: bool = True, size: int = 64) -> QIcon:
    """A disc in the state's colour; muted (or no microphone): grey with a red slash; push-to-talk:
    a white "P" on it."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    deaf = muted or not microphone
    colour = QColor(
        STATE_COLOURS["idle"] if deaf and state in ("listening", "hearing") else STATE_COLOURS.get(state, "#888")
    )
    margin = size * 0.08
    disc = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    p.setPen(QPen(QColor(0, 0, 0, 90), size * 0.03))
    p.setBrush(colour)
    p.drawEllipse(disc)
    if push_to_talk:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * 0.5))
        p.setFont(font)
        p.setPen(QColor("white"))
        p.drawText(disc, Qt.AlignmentFlag.AlignCenter, "P")
    if deaf:
        p.setPen(QPen(QColor(MUTED_COLOUR), size * 0.11, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawLine(QPointF(size * 0.2, size * 0.2), QPointF(size * 0.8, size * 0.8))
    p.end()
    return QIcon(pixmap)


class Tray(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.icon = QSystemTrayIcon(window)
        self.menu = QMenu()
        self.show_action = QAction("Hide window", self)
        self.show_action.triggered.connect(self.toggle_window)
        self.mute_action = QAction("Mute microphone", self, checkable=True)
        self.mute_action.toggled.connect(window.set_muted)
        self.ptt_action = QAction("Push to talk", self, checkable=True)
        self.ptt_action.setToolTip("Off: always listening")
        self.ptt_action.toggled.connect(lambda on: window.set_mode("push-to-talk" if on else "always-listening"))
        self.stop_action = QAction("Stop speaking", self)
        self.stop_action.triggered.connect(window.runtime.stop_reply)
        self.quit_action = QAction("Quit", self)
        self.quit_action.triggered.connect(window.quit_app)
        for action in (
            self.show_action,
            None,
            self.mute_action,
            self.ptt_action,
            self.stop_action,
            None,
            self.quit_action,
        ):
            self.menu.addSeparator() if action is None else self.menu.addAction(action)
        self.menu.aboutToShow.connect(self.refresh)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.refresh()

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def toggle_window(self) -> None:
        if self.window.isVisible() and not self.window.isMinimized():
            self.window.hide()
        else:
            self.window.bring_back()
        self.refresh()

    def _activated(self, reason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.toggle_window()

    def refresh(self) -> None:
        """Icon, tooltip and the menu's checks from the window's view of the companion."""
        w = self.window
        ptt = w.runtime.settings.mode == "push-to-talk"
        self.icon.setIcon(state_icon(w.state.state, w.muted, ptt, w.microphone_present))
        self.icon.setToolTip(
            f"Voice Companion: {status_text(w.state.state, w.muted, w.microphone_present)}"
            + (" (push to talk)" if ptt else "")
        )
        self.show_action.setText("Hide window" if w.isVisible() else "Show window")
        for action, value in ((self.mute_action, w.muted), (self.ptt_action, ptt)):
            action.blockSignals(True)
            action.setChecked(value)
            action.blockSignals(False)
