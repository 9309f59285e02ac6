"""The window opens, or says why: a missing X11 library is named with its package, in one line,
before Qt starts (and scripts/setup.sh installs from the same list)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.qt_libs import XCB_PLUGIN_NEEDS, missing_xcb_libraries, xcb_problem

ROOT = Path(__file__).resolve().parents[1]
ICCCM = Path("/usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4")


def test_every_library_of_the_xcb_plugin_is_listed():
    """The table holds what PySide6's xcb plugin links to (ldd), the C library and Qt's own aside."""
    plugin = Path(__import__("PySide6").__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    linked = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, check=True).stdout
    names = {line.split()[0] for line in linked.splitlines() if "=>" in line}
    direct_x11 = {
        n
        for n in names
        if n.startswith(("libxcb", "libX11", "libxkbcommon", "libEGL", "libGL.", "libfontconfig", "libdbus"))
    }
    assert direct_x11 and direct_x11 <= set(XCB_PLUGIN_NEEDS)


def test_nothing_missing_here(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert missing_xcb_libraries() == {}
    assert xcb_problem() is None


def test_an_unknown_library_is_named_with_its_package():
    needs = {"libxcb.so.1": "libxcb1", "libxcb-not-here.so.9": "libxcb-not-here9"}
    assert missing_xcb_libraries(needs) == {"libxcb-not-here.so.9": "libxcb-not-here9"}


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not ICCCM.exists(),
    reason="needs root (a private mount namespace) and libxcb-icccm4 installed",
)
def test_app_names_the_missing_package_in_one_line(tmp_path):
    """libxcb-icccm made unloadable (an empty file mounted over it, in a private mount namespace):
    the app refuses with one line naming libxcb-icccm4, and setup's check asks for that package."""
    real = ICCCM.resolve()
    env = {**os.environ, "DISPLAY": ":77", "VOICE_COMPANION_DATA": str(tmp_path / "data")}
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("WAYLAND_DISPLAY", None)
    script = f'mount --bind /dev/null {real} && {sys.executable} -m app.cli; echo "exit=$?"; python3 app/qt_libs.py'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "libxcb-icccm.so.4" in lines[0] and "sudo apt-get install libxcb-icccm4" in lines[0]
    out = proc.stdout.strip().splitlines()
    assert out == ["exit=3", "libxcb-icccm4"]
