"""Small helpers the settings tabs share for building their forms."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QWidget

# How a tab says something in the dialog's message line: (text, error).
Say = Callable[..., None]


def disable_item(combo: QComboBox, index: int, reason: str) -> None:
    model = combo.model()
    assert isinstance(model, QStandardItemModel)  # a QComboBox's own model
    item = model.item(index)
    item.setEnabled(False)
    item.setToolTip(reason)


def select(combo: QComboBox, data: Any) -> None:
    """Choose the item carrying `data`; the first item when none does."""
    index = combo.findData(data)
    combo.setCurrentIndex(max(0, index))


def row(*widgets: QWidget) -> QWidget:
    """Widgets side by side as one form field (the first one stretches), so the field's label
    gets a buddy and its keyboard shortcut works."""
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == 0 else 0)
    return holder


def percent_range(bounds: tuple[float, float]) -> tuple[int, int]:
    """A setting's range as whole percent, for a slider: (0.5, 2.0) -> (50, 200)."""
    return round(bounds[0] * 100), round(bounds[1] * 100)
