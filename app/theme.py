"""Light and dark themes that follow the system, and the app icon."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette

ICON = Path(__file__).resolve().parents[1] / "assets" / "icon.svg"

# State colours, readable on both themes.
STATE_COLOURS = {
    "idle": "#8a8f98",
    "listening": "#2e9d5b",
    "hearing": "#2f7fd8",
    "thinking": "#d08b12",
    "speaking": "#8a4fd8",
}


def is_dark(app: QGuiApplication) -> bool:
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor("#1e1f22"), QColor("#2b2d31"), QColor("#e6e6e6")
    for role, colour in (
        (QPalette.Window, window),
        (QPalette.WindowText, text),
        (QPalette.Base, base),
        (QPalette.AlternateBase, window),
        (QPalette.Text, text),
        (QPalette.Button, window),
        (QPalette.ButtonText, text),
        (QPalette.ToolTipBase, base),
        (QPalette.ToolTipText, text),
        (QPalette.Highlight, QColor("#3d7bd9")),
        (QPalette.HighlightedText, QColor("#ffffff")),
        (QPalette.PlaceholderText, QColor("#9a9a9a")),
        (QPalette.Link, QColor("#7fb2ff")),
    ):
        p.setColor(role, colour)
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        p.setColor(QPalette.Disabled, role, QColor("#777777"))
    return p


def apply_theme(app: QGuiApplication, dark: bool | None = None) -> None:
    """Fusion with the system's light or dark scheme (`dark` forces one), following later changes."""
    app.setStyle("Fusion")
    app.setWindowIcon(QIcon(str(ICON)))
    dark = is_dark(app) if dark is None else dark
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    if not getattr(app, "_theme_follows", False):
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
        app._theme_follows = True
