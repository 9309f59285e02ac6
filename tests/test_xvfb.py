"""The companion on a real X server (Xvfb), not the offscreen platform: with an xterm holding the
keyboard focus, the global push-to-talk key (sent with xdotool, through XTEST) starts and ends a
turn that is answered; the tray's menu actions work (a tray host, trayer, runs); closing the
window keeps the companion in the tray; Quit ends it with every thread gone and its files saved.
The app runs in a child process (tests/xvfb_app.py): this process's Qt is on the offscreen platform.

Skipped only when Xvfb, xdotool, xterm or trayer are missing (scripts/setup.sh installs them)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("Xvfb", "xdotool", "xterm", "trayer")
missing = [tool for tool in TOOLS if shutil.which(tool) is None]
pytestmark = [
    pytest.mark.models,
    pytest.mark.timeout(600),
    pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (scripts/setup.sh installs them)"),
]


def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture
def x_server():
    """Xvfb with a tray host and an xterm that holds the keyboard focus."""
    n = _free_display()
    env = {**os.environ, "DISPLAY": f":{n}"}
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("XDG_SESSION_TYPE", None)
    started = [
        subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        started.append(
            subprocess.Popen(
                ["trayer", "--expand", "false"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        started.append(
            subprocess.Popen(
                ["xterm", "-title", "other-app"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        xterm = subprocess.run(
            ["xdotool", "search", "--sync", "--name", "other-app"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.split()[0]
        yield env, xterm
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=10)


class App:
    """The app in its child process: its JSON lines arrive on a queue; `expect` waits for one."""

    def __init__(self, env: dict, data: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.xvfb_app", str(data)],
            cwd=ROOT,
            env={**env, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def expect(self, test, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out; saw {self.seen[-15:]}") from None
            if message is None:
                raise AssertionError(f"the app exited ({self.process.wait()}): {self.process.stderr.read()[-3000:]}")
            self.seen.append(message)
            if test(message):
                return message

    def command(self, line: str) -> dict:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.expect(lambda m: m.get("done") == line, 30)


def _focus(env: dict) -> str:
    return subprocess.run(
        ["xdotool", "getwindowfocus"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_global_key_tray_close_to_tray_and_quit_on_a_real_x_server(x_server, tmp_path):
    env, xterm = x_server
    app = App(env, tmp_path / "user")
    try:
        ready = app.expect(lambda m: "ready" in m, 400)
        assert ready["tray"], "trayer runs: the tray must be available"
        assert ready["global_key"], ready["problem"]
        subprocess.run(["xdotool", "windowfocus", "--sync", xterm], env=env, check=True, timeout=20)
        assert _focus(env) == xterm and str(ready["window"]) != xterm

        # The global key, held while the xterm has the focus, is a turn.
        subprocess.run(["xdotool", "keydown", "F8"], env=env, check=True)
        speaking = app.expect(lambda m: "speaking" in m, 30)["speaking"]
        time.sleep(speaking + 0.4)  # the user's question plays into the room in real time
        subprocess.run(["xdotool", "keyup", "F8"], env=env, check=True)
        reply = app.expect(lambda m: "reply" in m, 120)
        assert reply["reason"] == "complete" and "paris" in reply["reply"].lower(), reply
        assert _focus(env) == xterm  # the companion never took the focus

        # The tray's menu.
        assert app.command("tray mute") and app.expect(lambda m: m.get("muted") is True, 30)
        assert app.command("tray mute") and app.expect(lambda m: m.get("muted") is False, 30)
        assert app.command("tray ptt")["mode"] == "always-listening"
        assert app.command("tray ptt")["mode"] == "push-to-talk"
        assert app.command("tray stop")
        hidden = app.command("tray toggle window")
        assert hidden["visible"] is False
        assert app.command("tray toggle window")["visible"] is True

        # Closing the window keeps the companion in the tray, with a notice the first time.
        closed = app.command("close")
        assert closed["visible"] is False and closed["tray_notice_shown"] is True
        assert app.process.poll() is None

        # Quit: the process ends, and before it does, every thread has ended within 2 s.
        app.process.stdin.write("tray quit\n")
        app.process.stdin.flush()
        exited = app.expect(lambda m: "exited" in m, 60)
        assert exited["exited"] == 0 and exited["threads"] == [], exited
        assert exited["conversation_closed"] and exited["settings_saved"]
        assert exited["history"] == ["user", "assistant"]
        assert app.process.wait(timeout=30) == 0
    finally:
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait()


def test_screenshots_are_read_back_from_the_x_server(x_server, tmp_path):
    """The README's screenshots (app/main.py `_grab`) on a real display are the server's pixels
    (`widget.grab()` would paint the widget alone, whatever covers it)."""
    env, _xterm = x_server
    shot = tmp_path / "shot.png"
    script = (
        "import sys\n"
        "from PySide6.QtGui import QGuiApplication\n"
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "from app.main import _grab, _wait\n"
        "app = QApplication([])\n"
        "assert QGuiApplication.platformName() == 'xcb'\n"
        "label = QLabel('')\n"
        "label.setStyleSheet('background: #3366cc')\n"
        "label.setGeometry(0, 0, 200, 100)\n"
        "label.show()\n"
        "assert _wait(app, lambda: label.windowHandle().isExposed(), 10)\n"
        "cover = QLabel('')\n"  # another window over the left half: on screen, it hides the label there
        "cover.setStyleSheet('background: #cc3333')\n"
        "cover.setGeometry(0, 0, 100, 100)\n"
        "cover.show()\n"
        "assert _wait(app, lambda: cover.windowHandle().isExposed(), 10)\n"
        "_wait(app, lambda: False, 0.5)\n"
        "assert _grab(label).save(sys.argv[1])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(shot)],
        cwd=ROOT,
        check=True,
        timeout=60,
        env={**env, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)},
    )
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert (image.width(), image.height()) == (200, 100)
    assert {image.pixelColor(x, y).name() for x, y in ((105, 5), (150, 50), (194, 94))} == {"#3366cc"}
    # What the display shows, not the widget painted on its own: the window over it is in the picture.
    assert {image.pixelColor(x, y).name() for x, y in ((5, 5), (50, 50), (94, 94))} == {"#cc3333"}
