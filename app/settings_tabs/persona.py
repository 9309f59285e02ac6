"""The Persona tab: who the companion is, added to the chat model's instructions."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from core.settings import Settings
from models.engine import Capabilities


class PersonaTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Who the companion is: added to the chat model's instructions. Leave empty for the preset's persona."
            )
        )
        self.persona = QPlainTextEdit()
        self.persona.setAccessibleName("Persona")
        self.persona.setPlaceholderText("e.g. You are Ada, a patient tutor who loves astronomy.")
        layout.addWidget(self.persona, 1)

    @property
    def text(self) -> str:
        return self.persona.toPlainText().strip()

    def load(self, s: Settings) -> None:
        self.persona.setPlainText(s.persona)

    def values(self) -> dict[str, Any]:
        return {"persona": self.text}

    def honour(self, caps: Capabilities) -> None:
        if not caps.instruction_styles:
            self.persona.setEnabled(False)
            self.persona.setToolTip(
                "This engine does not take instructions, so the persona cannot change what it says."
            )
