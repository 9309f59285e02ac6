"""Starting the desktop app, and rendering its screenshots without a display."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import cast

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "questions" / "q01.flac"


def _application(argv: list[str]):
    from PySide6.QtWidgets import QApplication

    from app.theme import apply_theme

    app = cast("QApplication | None", QApplication.instance()) or QApplication(argv)  # only ever one made here
    app.setApplicationName("Voice Companion")
    app.setDesktopFileName("voice-companion")
    apply_theme(app)
    return app


def run_app(argv: list[str]) -> int:
    """The desktop app: first-run setup when the default models are missing, then the window."""
    from PySide6.QtWidgets import QDialog

    from app.main_window import MainWindow
    from app.setup_dialog import SetupDialog
    from core.app_backend import Runtime, missing_assets
    from core.settings import UserFiles
    from models.registry import ModelStore

    app = _application(argv)
    files = UserFiles()
    store = ModelStore(files.root)
    missing = missing_assets(store)
    if missing and SetupDialog(store, missing).exec() != QDialog.DialogCode.Accepted:
        return 1
    window = MainWindow(lambda post: Runtime(post, files, store))
    # With a tray the companion outlives its window; it ends with Quit (MainWindow.quit_app).
    app.setQuitOnLastWindowClosed(window.tray is None)
    window.show()
    window.runtime.start(greet=bool(missing))
    probe = os.environ.get(STARTUP_PROBE)
    if probe:
        _report_startup(Path(probe), app, window)
    return app.exec()


STARTUP_PROBE = "VOICE_COMPANION_STARTUP_PROBE"  # a file: `bench startup` reads when this start got where


def _report_startup(path: Path, app, window) -> None:
    """For `bench startup`: append one JSON line per milestone, with the wall clock, to `path`:
    the window painted, the models loaded and the audio open (a first reply is possible), and the
    resident memory after some idle seconds."""
    import json
    import threading

    import psutil
    from PySide6.QtCore import QTimer

    def mark(what: str, **extra) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": what, "time": time.time(), **extra}) + "\n")

    QTimer.singleShot(0, lambda: mark("window", exposed=window.isVisible()))

    def ready() -> None:
        if window.runtime.wait_ready(600):
            mark("ready", engine_ready=window.runtime.conversation is not None)
            time.sleep(float(os.environ.get("VOICE_COMPANION_STARTUP_IDLE", "5")))
            mark("idle", rss_mb=psutil.Process().memory_info().rss / 1e6)

    threading.Thread(target=ready, name="startup-probe", daemon=True).start()


def _wait(app, condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True


def _grab(window):
    """The window as the display shows it: on a real display (X11), the pixels read back from the
    server; offscreen, Qt's own rendering of the widget."""
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.platformName() == "offscreen":
        return window.grab()
    return window.screen().grabWindow(window.winId())


# Asked and answered before the screenshot, then one more question caught while its answer is spoken.
EARLIER = ("q02.flac", "q09.flac")
LAST = "q05.flac"


def screenshots(out_dir: Path, scale: float = 1.0, dark: bool | None = None) -> list[Path]:
    """Render the main window mid-conversation (real turns through the real models, in a simulated
    room: two answered, the third while its answer is spoken) and the settings pane's tabs to PNG
    files. Without a display it renders offscreen; with QT_QPA_PLATFORM=xcb on an X server (Xvfb:
    scripts/screenshots.sh) the images are read back from the server. The dark theme's files end
    in "-dark"."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if scale != 1.0:
        os.environ["QT_SCALE_FACTOR"] = str(scale)
    from app.main_window import MainWindow
    from app.settings_dialog import SettingsDialog
    from app.theme import apply_theme
    from core.audio.io import load_voice
    from core.app_backend import Runtime
    from core.settings import UserFiles

    app = _application([])
    if dark is not None:
        apply_theme(app, dark)
    suffix = "-dark" if dark else ""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:  # the user's own settings and history stay untouched
        files = UserFiles(Path(scratch))
        files.presets.mkdir(parents=True)
        window = MainWindow(lambda post: Runtime(post, files, simulated=True))
        window.resize(760, 640)
        window.show()
        window.runtime.start()
        if not window.runtime.wait_ready(300):
            raise RuntimeError("the models did not load")
        answered = lambda: sum(line.role == "assistant" and not line.live for line in window.view.lines)  # noqa: E731
        for name in EARLIER:
            before = answered()
            window.runtime.speak(load_voice(SAMPLE.parent / name))
            if not _wait(app, lambda n=before: answered() > n and window.state.state == "listening", 90):
                raise RuntimeError(f"{name} was not answered")
        window.runtime.speak(load_voice(SAMPLE.parent / LAST))
        speaking = lambda: window.state.state == "speaking" and window.presence.output_db > -40  # noqa: E731
        if not _wait(app, speaking, 60):
            raise RuntimeError("no reply was spoken")
        _wait(app, lambda: False, 1.2)  # a clause or two of the reply on screen and in the presence
        written = [out_dir / f"main-window{suffix}.png"]
        _grab(window).save(str(written[0]))
        dialog = SettingsDialog(window.runtime, window)
        dialog.show()
        tabs = {dialog.tabs.tabText(i).replace("&", "").lower(): i for i in range(dialog.tabs.count())}
        for name in ("audio", "voice", "engine", "desktop"):
            dialog.tabs.setCurrentIndex(tabs[name])
            _wait(app, lambda: False, 0.3)  # painted, and on a real display, shown by the server
            path = out_dir / f"settings-{name}{suffix}.png"
            _grab(dialog).save(str(path))
            written.append(path)
        dialog.close()
        window.quit_app()  # with a tray too: the runtime's threads end and the devices close
    return written
