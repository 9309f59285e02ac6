"""The About box: the version, the app's licence, and the licences of what it ships."""

from __future__ import annotations

import html
import sys
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from app.version import LICENCE, ROOT, version
from models.registry import DEFAULT_ASSETS, get

THIRD_PARTY = "THIRD_PARTY_LICENSES"


def third_party_file() -> Path | None:
    """The bundle's list of every library and model it carries with their licences (written by
    scripts/licenses.py when the bundle is built); None in a checkout."""
    path = Path(getattr(sys, "_MEIPASS", ROOT)) / THIRD_PARTY
    return path if path.is_file() else None


def about_html() -> str:
    models = "".join(
        f"<li>{html.escape(a.id)}: {html.escape(a.licence)}</li>" for a in (get(i) for i in DEFAULT_ASSETS)
    )
    listed = third_party_file()
    where = (
        f"Every library and model in this build, with its licence text: <tt>{html.escape(str(listed))}</tt>"
        if listed
        else "From a checkout: the libraries' licences are those of the installed packages "
        "(<tt>python scripts/licenses.py</tt> lists them)."
    )
    return (
        f"<h3>Voice Companion {html.escape(version())}</h3>"
        "<p>A voice companion that runs entirely on your own machine.</p>"
        f"<p>Licence: {LICENCE}. This program comes with ABSOLUTELY NO WARRANTY; it is free "
        "software, and you are welcome to redistribute it under the terms of the GNU General "
        "Public License, version 3 or any later version.</p>"
        "<p>It ships Piper and praat-parselmouth (GPL-3.0-or-later), Qt for Python (LGPL-3.0), "
        "llama.cpp, CTranslate2, onnxruntime and PyTorch (MIT/BSD), and these models:</p>"
        f"<ul>{models}</ul><p>{where}</p>"
    )


def show_about(parent: QWidget) -> QMessageBox:
    box = QMessageBox(
        QMessageBox.Icon.Information,
        "About Voice Companion",
        about_html(),
        QMessageBox.StandardButton.Close,
        parent,
    )
    box.setObjectName("about")
    box.open()
    return box
