"""The app's one version number, read from pyproject.toml (its only home).

From a checkout: the pyproject.toml beside the code. From a bundle: the VERSION file build.spec
writes next to the bundled code from that same pyproject. From an installed wheel: its metadata.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LICENCE = "GPL-3.0-or-later"


@cache
def version() -> str:
    bundled = Path(getattr(sys, "_MEIPASS", ROOT)) / "VERSION"
    if bundled.is_file():
        return bundled.read_text(encoding="utf-8").strip()
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    from importlib.metadata import version as installed_version

    return installed_version("voice-companion")
