"""Small widgets of the main window: the state indicator, the presence indicator, a level meter
(the settings' microphone test), the conversation as message bubbles."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QKeySequence, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.theme import STATE_COLOURS

STATE_TEXT = {
    "idle": "Starting",
    "listening": "Listening",
    "hearing": "Hearing you",
    "thinking": "Thinking",
    "speaking": "Speaking",
}


def status_text(state: str, muted: bool = False, microphone: bool = True) -> str:
    """The state in words; while it would be listening, a muted or missing microphone says so."""
    if state in ("listening", "hearing"):
        if not microphone:
            return "No microphone"
        if muted:
            return "Microphone muted"
    return STATE_TEXT.get(state, state.capitalize())


def open_folder(folder: Path) -> bool:
    """Show `folder` in the system's file manager (made first if need be); False if none opened."""
    folder.mkdir(parents=True, exist_ok=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class StateIndicator(QWidget):
    """A coloured dot and a word; the accessible name carries the state for screen readers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dot = QLabel("\u25cf")
        self.label = QLabel()
        font = self.label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.label.setFont(font)
        self.dot.setFont(font)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.dot)
        layout.addWidget(self.label)
        self.state = ""
        self.muted = False
        self.microphone = True
        self.set_state("idle")

    def set_state(self, state: str) -> None:
        self.state = state
        self._show()

    def set_input(self, microphone: bool, muted: bool) -> None:
        self.microphone, self.muted = microphone, muted
        self._show()

    def _show(self) -> None:
        deaf = (self.muted or not self.microphone) and self.state in ("listening", "hearing")
        colour = STATE_COLOURS["idle"] if deaf else STATE_COLOURS.get(self.state, "#888")
        self.dot.setStyleSheet(f"color: {colour};")
        self.label.setText(status_text(self.state, self.muted, self.microphone))
        self.setAccessibleName(f"State: {self.label.text()}")


class Presence(QWidget):
    """The companion's presence: a disc in the state's colour that swells with its voice, and a
    ring around it that widens with yours. Levels arrive about 20 times a second; a 30 ms timer
    eases toward them while anything moves and stops when all is still."""

    LOW_DB = -60.0
    EASE = 0.35  # share of the way to the target covered each step

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Presence")
        self.setAccessibleDescription("Moves with the companion's voice and with yours")
        self.setMinimumSize(56, 56)
        self.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        self.state = "idle"
        self.deaf = False
        self.input_db = self.output_db = -90.0  # the latest readings, dBFS
        self._voice = self._you = 0.0  # shown, 0..1
        self._targets = (0.0, 0.0)
        self._timer = QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._step)

    def sizeHint(self):  # noqa: N802
        side = self.fontMetrics().height() * 4
        return QSize(side, side)

    def set_state(self, state: str, deaf: bool = False) -> None:
        self.state, self.deaf = state, deaf
        self.update()

    def _fraction(self, db: float) -> float:
        return min(1.0, max(0.0, (db - self.LOW_DB) / -self.LOW_DB))

    def set_levels(self, input_db: float, output_db: float) -> None:
        self.input_db, self.output_db = input_db, output_db
        you = 0.0 if self.deaf else self._fraction(input_db)
        self._targets = (self._fraction(output_db), you)
        if not self._timer.isActive():
            self._timer.start()

    def _step(self) -> None:
        voice, you = self._targets
        self._voice += (voice - self._voice) * self.EASE
        self._you += (you - self._you) * self.EASE
        if abs(voice - self._voice) < 0.005 and abs(you - self._you) < 0.005:
            self._voice, self._you = voice, you
            if voice == 0 and you == 0:
                self._timer.stop()
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        side = min(self.width(), self.height())
        centre = QRectF(self.rect()).center()
        colour = QColor(STATE_COLOURS["idle"] if self.deaf else STATE_COLOURS.get(self.state, "#888"))
        # Your voice: a soft ring from the disc's edge outward.
        ring = side * (0.32 + 0.16 * self._you)
        halo = QColor(STATE_COLOURS["hearing"])
        halo.setAlphaF(0.15 + 0.45 * self._you)
        p.setPen(Qt.NoPen)
        p.setBrush(halo)
        p.drawEllipse(centre, ring, ring)
        # The companion's voice: the disc itself.
        radius = side * (0.2 + 0.1 * self._voice)
        p.setBrush(colour)
        p.drawEllipse(centre, radius, radius)
        if self.deaf:
            p.setPen(QPen(QColor("#d0453a"), max(2.0, side * 0.05), Qt.SolidLine, Qt.RoundCap))
            d = radius * 0.7
            p.drawLine(centre + QPointF(-d, -d), centre + QPointF(d, d))


MODIFIER_NAMES = (
    (Qt.ControlModifier, "Ctrl"),
    (Qt.AltModifier, "Alt"),
    (Qt.ShiftModifier, "Shift"),
    (Qt.MetaModifier, "Meta"),
)
MODIFIER_KEYS = {
    Qt.Key_Control: "Ctrl",
    Qt.Key_Shift: "Shift",
    Qt.Key_Alt: "Alt",
    Qt.Key_Meta: "Meta",
    Qt.Key_AltGr: "AltGr",
    Qt.Key_Super_L: "Super",
    Qt.Key_Super_R: "Super",
}


class KeyCapture(QPushButton):
    """Shows a key; click (or Space/Enter on it) and press a key to choose another. `check(name,
    modifiers)` returns why a key cannot be chosen, or None; a refused key keeps the old one."""

    captured = Signal(str)
    refused = Signal(str)

    def __init__(self, check, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.check = check
        self.key = "Space"
        self.listening = False
        self.clicked.connect(self.listen)
        self.set_key(self.key)

    def set_key(self, name: str) -> None:
        self.key, self.listening = name, False
        self.setText(name)
        self.setToolTip("Click, then press the key to hold while you speak")

    def listen(self) -> None:
        self.listening = True
        self.setText("Press a key…")
        self.grabKeyboard()

    def event(self, event) -> bool:
        if self.listening and event.type() == QEvent.ShortcutOverride:
            event.accept()  # while listening every key is the new key, not a shortcut (Esc, Ctrl+M)
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if not self.listening:
            super().keyPressEvent(event)
            return
        if event.isAutoRepeat():
            return
        self.releaseKeyboard()
        key = Qt.Key(event.key())
        name = MODIFIER_KEYS.get(key) or QKeySequence(key).toString(QKeySequence.PortableText)
        modifiers = tuple(
            label for flag, label in MODIFIER_NAMES if event.modifiers() & flag and label != MODIFIER_KEYS.get(key)
        )
        reason = self.check(name, modifiers)
        if reason is None:
            self.set_key(name)
            self.captured.emit(name)
        else:
            self.set_key(self.key)
            self.refused.emit(reason)

    def focusOutEvent(self, event) -> None:  # noqa: N802
        if self.listening:
            self.releaseKeyboard()
            self.set_key(self.key)
        super().focusOutEvent(event)


class LevelMeter(QWidget):
    """A horizontal bar from -60 to 0 dBFS with a short hold, painted (cheap at 20 updates/s)."""

    LOW_DB = -60.0

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(name)
        self.setMinimumSize(80, 10)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.db = self.LOW_DB

    def sizeHint(self):  # noqa: N802 (Qt name)
        size = super().sizeHint()
        size.setHeight(max(10, self.fontMetrics().height() // 2))
        return size

    def set_db(self, db: float) -> None:
        # Falls back slowly so a meter is readable; rises at once.
        self.db = db if db > self.db else max(db, self.db - 3.0)
        self.update()

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, (self.db - self.LOW_DB) / -self.LOW_DB))

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(self.palette().color(QPalette.Mid))
        p.setBrush(self.palette().color(QPalette.Base))
        p.drawRoundedRect(r, 3, 3)
        colour = QColor("#2e9d5b") if self.db < -12 else QColor("#d08b12") if self.db < -3 else QColor("#d0453a")
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        p.drawRoundedRect(QRectF(r.x(), r.y(), r.width() * self.fraction, r.height()), 3, 3)


@dataclass
class Line:
    role: str  # "user" or "assistant"
    text: str
    interrupted: bool = False
    latency_ms: float | None = None
    live: bool = False  # a reply still being spoken
    at: float = field(default_factory=time.time)


class Bubble(QFrame):
    """One message: its text (selectable), and beneath it the time, and for a reply its latency
    and whether it was interrupted. Right click: copy."""

    def __init__(self, line: Line, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.line = line
        self.setObjectName("userBubble" if line.role == "user" else "replyBubble")
        self.setFocusPolicy(Qt.StrongFocus)  # reachable with Tab; the menu key copies
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.PlainText)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.text.setContextMenuPolicy(Qt.NoContextMenu)  # the bubble's own menu, with Copy message
        self.meta = QLabel()
        small = self.meta.font()
        small.setPointSizeF(small.pointSizeF() * 0.85)
        self.meta.setFont(small)
        layout.addWidget(self.text)
        layout.addWidget(self.meta)
        self.refresh()

    def refresh(self) -> None:
        line = self.line
        self.text.setText(line.text + (" \u2026" if line.live else ""))
        parts = [time.strftime("%H:%M", time.localtime(line.at))]
        if line.latency_ms is not None:
            parts.append(f"{line.latency_ms:.0f} ms")
        if line.interrupted:
            parts.append("interrupted")
        self.meta.setText(" · ".join(parts))
        who = {"user": "You", "assistant": "Companion"}.get(line.role, "Notice")
        self.setAccessibleName(f"{who}: {line.text}")
        self.setAccessibleDescription(self.meta.text())

    def fit(self, width: int) -> None:
        """At most `width` wide; a short message only as wide as its text (a wrapping label
        would otherwise take a narrow width of its own choosing)."""
        self.setMaximumWidth(width)
        margins = self.layout().contentsMargins()
        room = width - margins.left() - margins.right()
        words = max(
            (self.text.fontMetrics().horizontalAdvance(part) for part in (self.text.text(), self.meta.text())),
            default=0,
        )
        self.text.setMinimumWidth(min(words + 2, room))

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.line.text)

    def contextMenuEvent(self, event) -> None:  # noqa: N802
        menu = QMenu(self)
        menu.addAction("Copy message", self.copy)
        menu.exec(event.globalPos())


BUBBLE_SHARE = 0.78  # of the view's width: the widest a bubble gets
BUBBLE_STYLE = """
QFrame#userBubble { background: palette(highlight); border-radius: 12px; }
QFrame#userBubble QLabel { color: palette(highlighted-text); }
QFrame#replyBubble { background: palette(base); border: 1px solid palette(mid); border-radius: 12px; }
"""


class ConversationView(QScrollArea):
    """The conversation as message bubbles: yours on the right, the companion's on the left,
    growing clause by clause as they are spoken; each with its time, a reply with its latency and
    an "interrupted" mark. Scrolls to the newest unless you have scrolled up to read."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.inner = QWidget()
        self.inner.setStyleSheet(BUBBLE_STYLE)
        self.rows = QVBoxLayout(self.inner)
        self.rows.setSpacing(8)
        self.rows.addStretch(1)
        self.setWidget(self.inner)
        self.placeholder = QLabel(
            "Talk to me: just speak, or in push-to-talk mode hold the button or the key. "
            "You can cut in while I answer. Or type a question below."
        )
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setForegroundRole(QPalette.PlaceholderText)
        self.rows.addWidget(self.placeholder)
        self.lines: list[Line] = []
        self.bubbles: dict[int, Bubble] = {}  # id(line) -> its bubble
        self._follow = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(lambda v: setattr(self, "_follow", v >= bar.maximum() - 4))
        bar.rangeChanged.connect(lambda _lo, hi: bar.setValue(hi) if self._follow else None)

    def add_user(self, text: str, at: float | None = None) -> None:
        self._close_live()
        self._add(Line("user", text, **({"at": at} if at is not None else {})))

    def add_reply_text(self, delta: str) -> None:
        live = self._live()
        if live is None:
            self._add(Line("assistant", delta.strip(), live=True))
        else:
            live.text = (live.text + " " + delta.strip()).strip()
            self._refresh(live)

    def finish_reply(self, text: str, reason: str, transcript: str = "") -> None:
        live = self._live()
        if reason == "discarded":  # the turn went on: its reply never counted, its words come again
            if live is not None:
                self._remove(live)
            if transcript and self.lines and self.lines[-1].role == "user" and self.lines[-1].text == transcript:
                self._remove(self.lines[-1])
            return
        if reason == "interrupted":
            if live is None and text:
                live = Line("assistant", text)
                self._add(live)
            if live is not None:
                live.text, live.interrupted = text or live.text, True
        elif live is not None and text:
            live.text = text
        if live is not None:
            live.live = False
            if not live.text:
                self._remove(live)
            else:
                self._refresh(live)

    def set_latency(self, ms: float) -> None:
        for line in reversed(self.lines):
            if line.role == "assistant":
                line.latency_ms = ms
                self._refresh(line)
                break

    def clear_lines(self) -> None:
        """Forget every line shown (the history was erased)."""
        for line in list(self.lines):
            self._remove(line)

    def _bubble_width(self) -> int:
        return max(200, int(self.viewport().width() * BUBBLE_SHARE))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        width = self._bubble_width()
        for bubble in self.bubbles.values():
            bubble.fit(width)

    def bubble(self, line: Line) -> Bubble:
        return self.bubbles[id(line)]

    def _live(self) -> Line | None:
        return self.lines[-1] if self.lines and self.lines[-1].live else None

    def _close_live(self) -> None:
        live = self._live()
        if live is not None:
            live.live = False
            self._refresh(live)

    def _add(self, line: Line) -> None:
        self.lines.append(line)
        bubble = Bubble(line)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        if line.role != "assistant":
            row.addStretch(1)
        row.addWidget(bubble)
        if line.role != "user":
            row.addStretch(1)
        bubble.fit(self._bubble_width())
        holder = QWidget()
        holder.setLayout(row)
        self.bubbles[id(line)] = bubble
        self.rows.addWidget(holder)
        self.placeholder.hide()

    def _refresh(self, line: Line) -> None:
        bubble = self.bubbles[id(line)]
        bubble.refresh()
        bubble.fit(self._bubble_width())

    def _remove(self, line: Line) -> None:
        self.lines.remove(line)
        bubble = self.bubbles.pop(id(line))
        holder = bubble.parentWidget()
        self.rows.removeWidget(holder)
        holder.deleteLater()
        self.placeholder.setVisible(not self.lines)
