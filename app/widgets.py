"""Small widgets of the main window: the state indicator, a level meter, the conversation view."""
from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QTextBrowser, QWidget

from app.theme import STATE_COLOURS

STATE_TEXT = {
    "idle": "Starting",
    "listening": "Listening",
    "hearing": "Hearing you",
    "thinking": "Thinking",
    "speaking": "Speaking",
}


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
        self.set_state("idle")

    def set_state(self, state: str) -> None:
        self.state = state
        self.dot.setStyleSheet(f"color: {STATE_COLOURS.get(state, '#888')};")
        self.label.setText(STATE_TEXT.get(state, state.capitalize()))
        self.setAccessibleName(f"State: {self.label.text()}")


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
    role: str  # "user", "assistant", "notice"
    text: str
    interrupted: bool = False
    latency_ms: float | None = None
    live: bool = False  # a reply still being spoken


class ConversationView(QTextBrowser):
    """The conversation as text: your turns, the replies growing clause by clause as they are
    spoken, interrupted replies marked, each reply's latency in small grey type."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Conversation")
        self.setOpenExternalLinks(False)
        self.lines: list[Line] = []
        self.render()

    def add_user(self, text: str) -> None:
        self._close_live()
        self.lines.append(Line("user", text))
        self.render()

    def add_reply_text(self, delta: str) -> None:
        live = self._live()
        if live is None:
            self.lines.append(Line("assistant", delta.strip(), live=True))
        else:
            live.text = (live.text + " " + delta.strip()).strip()
        self.render()

    def finish_reply(self, text: str, reason: str, transcript: str = "") -> None:
        live = self._live()
        if reason == "discarded":  # the turn went on: its reply never counted, its words come again
            if live is not None:
                self.lines.remove(live)
            if transcript and self.lines and self.lines[-1].role == "user" and self.lines[-1].text == transcript:
                self.lines.pop()
            self.render()
            return
        if reason == "interrupted":
            if live is None and text:
                live = Line("assistant", text)
                self.lines.append(live)
            if live is not None:
                live.text, live.interrupted = text or live.text, True
        elif live is not None and text:
            live.text = text
        if live is not None:
            live.live = False
            if not live.text:
                self.lines.remove(live)
        self.render()

    def set_latency(self, ms: float) -> None:
        for line in reversed(self.lines):
            if line.role == "assistant":
                line.latency_ms = ms
                break
        self.render()

    def clear_lines(self) -> None:
        """Forget every line shown (the history was erased)."""
        self.lines.clear()
        self.render()

    def add_notice(self, text: str) -> None:
        self.lines.append(Line("notice", text))
        self.render()

    def _live(self) -> Line | None:
        return self.lines[-1] if self.lines and self.lines[-1].live else None

    def _close_live(self) -> None:
        live = self._live()
        if live is not None:
            live.live = False

    def render(self) -> None:
        muted = self.palette().color(QPalette.PlaceholderText).name()
        accent = "#8a4fd8"
        rows = []
        for line in self.lines:
            text = html.escape(line.text)
            if line.role == "user":
                rows.append(f'<p><b>You</b><br>{text}</p>')
            elif line.role == "notice":
                rows.append(f'<p style="color:{muted}"><i>{text}</i></p>')
            else:
                extra = []
                if line.interrupted:
                    extra.append("interrupted")
                if line.latency_ms is not None:
                    extra.append(f"{line.latency_ms:.0f} ms")
                tail = f' <span style="color:{muted}; font-size:small">({", ".join(extra)})</span>' if extra else ""
                cursor = " \u2026" if line.live else ""
                rows.append(f'<p><b style="color:{accent}">Companion</b>{tail}<br>{text}{cursor}</p>')
        if not rows:
            rows.append(f'<p style="color:{muted}">Talk to me: just speak, or in push-to-talk mode hold the '
                        "button or the key. You can cut in while I answer. Or type a question below.</p>")
        self.setHtml("".join(rows))
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())
