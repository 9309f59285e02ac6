"""The system libraries Qt's X11 platform plugin (xcb) loads, and the Debian/Ubuntu packages that
ship them. Without one of them Qt only says "Could not load the Qt platform plugin xcb"; checked
before Qt starts, the app names the package instead.

Also run by scripts/setup.sh with the system python3 (this file imports nothing outside the
standard library): `python3 app/qt_libs.py` prints the packages to install, one per line.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

# soname -> package: what libqxcb.so and libQt6XcbQpa.so need beyond the C library (read off
# `ldd` of PySide6's plugin), with the package names of Debian 12 / Ubuntu 22.04 and later.
XCB_PLUGIN_NEEDS = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def _loadable(soname: str) -> bool:
    """Whether the dynamic loader can load it now, as Qt will (a copy inside an app bundle counts)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None and (Path(bundle) / soname).is_file():
        return True
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_libraries(needs: dict[str, str] = XCB_PLUGIN_NEEDS) -> dict[str, str]:
    """{soname: package} of what the xcb plugin needs and cannot load here."""
    return {soname: package for soname, package in needs.items() if not _loadable(soname)}


def uses_xcb() -> bool:
    """Whether Qt will pick its X11 plugin: on Linux, unless told otherwise or on Wayland."""
    if not sys.platform.startswith("linux"):
        return False
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return not (os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland")


def xcb_problem() -> str | None:
    """One line naming what to install when the window cannot open on X11; None when it can."""
    if not uses_xcb():
        return None
    missing = missing_xcb_libraries()
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(missing.values()))
    return (
        f"the window cannot open: Qt's X11 support needs {', '.join(missing)}; "
        f"install it with: sudo apt-get install {packages}"
    )


if __name__ == "__main__":
    for package in dict.fromkeys(missing_xcb_libraries().values()):
        print(package)
