"""Nothing fails silently: the rotating log in the data folder, tracebacks of caught and uncaught
exceptions in it, native crashes in crash.log, the command line naming the log, and the window's
way to the log folder. Each process-wide setup runs in a subprocess of its own, so this test
session's own logging and faulthandler stay as pytest set them."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from core.logs import BACKUPS, CRASH_FILE, LOG_FILE, MAX_BYTES
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def python(code: str, data: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with `data` as the user's data folder (no core dumps)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "VOICE_COMPANION_DATA": str(data)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),
    )


def cli(data: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout, env={"VOICE_COMPANION_DATA": str(data)})


def test_the_log_is_in_the_data_folder_and_rotates(tmp_path):
    # Three times what the log may keep: old files are dropped, none grows past the limit.
    code = f"""
import logging, sys
from core.logs import setup_logging
print(setup_logging(sys.argv[1]))
for i in range({(BACKUPS + 1) * 3 * MAX_BYTES // 1000}):
    logging.getLogger("some.module").info("record %d %s", i, "x" * 980)
logging.getLogger("some.module").warning("the last record")
"""
    proc = python(code, tmp_path, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    log = tmp_path / "logs" / LOG_FILE
    assert proc.stdout.strip() == str(log.resolve())
    files = sorted(p.name for p in log.parent.glob(LOG_FILE + "*"))
    assert files == [LOG_FILE] + [f"{LOG_FILE}.{i}" for i in range(1, BACKUPS + 1)]
    assert all((log.parent / name).stat().st_size <= MAX_BYTES for name in files)
    last = log.read_text().splitlines()[-1]
    # time, level, thread, logger, message
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING +\[MainThread\] some\.module: the last record", last
    ), last
    assert proc.stderr == ""  # the log never writes to the terminal


def test_setting_up_twice_adds_one_handler_and_another_folder_moves_the_log(tmp_path):
    code = """
import logging, sys
from core.logs import HANDLER_NAME, current_log_file, setup_logging
first = setup_logging(sys.argv[1])
hook = sys.excepthook
assert setup_logging(sys.argv[1]) == first
ours = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
print(len(ours), sys.excepthook is hook)
moved = setup_logging(sys.argv[2])
ours = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
print(len(ours), current_log_file() == moved != first)
logging.getLogger("after").info("written after the move")
"""
    proc = python(code, tmp_path, str(tmp_path / "a"), str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "True", "1", "True"]
    assert "written after the move" in (tmp_path / "b" / "logs" / LOG_FILE).read_text()
    assert "written after the move" not in (tmp_path / "a" / "logs" / LOG_FILE).read_text()


def test_uncaught_exceptions_on_any_thread_are_logged_with_their_traceback(tmp_path):
    code = """
import sys, threading
from core.logs import setup_logging
setup_logging(sys.argv[1])
def work():
    raise LookupError("lost on a worker")
thread = threading.Thread(target=work, name="engine-worker")
thread.start(); thread.join()
raise KeyError("lost on the main thread")
"""
    proc = python(code, tmp_path, str(tmp_path))
    assert proc.returncode == 1
    assert "lost on the main thread" in proc.stderr  # still printed as Python always did
    log = (tmp_path / "logs" / LOG_FILE).read_text()
    assert re.search(
        r"CRITICAL \[engine-worker\] core\.logs: uncaught exception in thread engine-worker\n"
        r"Traceback \(most recent call last\):\n(.+\n)+LookupError: lost on a worker",
        log,
    ), log
    assert re.search(
        r"uncaught exception\nTraceback \(most recent call last\):\n(.+\n)+"
        r"KeyError: 'lost on the main thread'",
        log,
    ), log


def test_a_native_crash_leaves_every_threads_stack_in_crash_log(tmp_path):
    code = """
import ctypes, threading
from app.cli import _start
_start()
threading.Thread(target=threading.Event().wait, name="parked", daemon=True).start()
def read_address_zero():
    ctypes.string_at(0)
read_address_zero()
"""
    proc = python(code, tmp_path)
    assert proc.returncode == -11, proc.stderr  # SIGSEGV
    crash = (tmp_path / "logs" / CRASH_FILE).read_text()
    assert re.search(r"--- pid \d+ started .+\nFatal Python error: Segmentation fault", crash), crash
    assert "read_address_zero" in crash  # the Python stack of the thread that crashed
    assert "Current thread 0x" in crash and "Thread 0x" in crash  # and the parked thread's too
    assert "started: voice-companion" in (tmp_path / "logs" / LOG_FILE).read_text()


def test_a_failure_inside_a_command_is_logged_and_the_cli_names_the_log(tmp_path):
    # A data folder where the voice activity model's folder is a file: assembling the model fails
    # inside the command with an OSError that nothing before the last line of defence handles.
    question = tmp_path / "q.wav"
    soundfile.write(question, np.zeros(16000, np.float32), 16000)
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / "silero-vad").write_text("not a folder")
    proc = cli(data, "talk", str(question), "--out", str(tmp_path / "reply.wav"))
    assert proc.returncode == 1, proc.stderr
    log = (data / "logs" / LOG_FILE).resolve()
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == f"see the log: {log}", proc.stderr
    assert lines[-2].startswith("voice-companion: ") and "Error" in lines[-2]
    assert "Traceback" not in proc.stderr
    text = log.read_text()
    # One record: the logger is app.cli (or __main__ when run as `python -m app.cli`), then the
    # traceback's lines, none of which starts a new record, down to the error.
    assert re.search(
        r"ERROR +\[MainThread\] (app\.cli|__main__): failed: voice-companion talk .+\n"
        r"Traceback \(most recent call last\):\n(?:(?!\d{4}-\d\d-\d\d ).*\n)*"
        r"FileExistsError: ",
        text,
    ), text
    assert "load_vad" in text  # the frames of the failing code path
    assert "exit code 1" in text


def test_a_refusal_stays_one_line_and_the_log_keeps_its_cause(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    proc = cli(tmp_path / "data", "talk", str(bad))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    text = (tmp_path / "data" / "logs" / LOG_FILE).read_text()
    # The user's line, then the libsndfile error it was made from, with both tracebacks.
    assert re.search(r"WARNING +\[MainThread\] (app\.cli|__main__): exit 2: .*not a readable audio file", text), text
    assert "LibsndfileError" in text and "AudioInputError" in text and "The above exception" in text


@pytest.fixture
def opened(monkeypatch):
    """The URLs the app asks the desktop to open, instead of opening them."""
    from PySide6.QtGui import QDesktopServices

    urls = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: urls.append(url) or True))
    return urls


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window over a runtime that is never started: no models, no audio."""
    from app.main_window import MainWindow
    from core.app_backend import Runtime
    from core.settings import UserFiles

    files = UserFiles(tmp_path / "user")
    window = MainWindow(lambda post: Runtime(post, files, simulated=True))
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()


def test_the_window_opens_the_log_folder(window, opened, tmp_path):
    from PySide6.QtCore import QUrl

    folder = tmp_path / "user" / "logs"
    assert window.open_log_action.text().replace("&", "") == "Open log folder"
    window.open_log_action.trigger()
    assert opened == [QUrl.fromLocalFile(str(folder))]
    assert folder.is_dir()  # made, so there is something to open before anything was logged


def test_an_error_notice_comes_with_the_log_one_click_away(window, opened, qtbot, tmp_path):
    from PySide6.QtCore import Qt, QUrl

    from core.events import Notice

    assert not window.log_button.isVisible()
    window.on_event(Notice("error", "the chat model could not be loaded"))
    assert window.notice.isVisible() and window.log_button.isVisible()
    qtbot.mouseClick(window.log_button, Qt.LeftButton)
    assert opened == [QUrl.fromLocalFile(str(tmp_path / "user" / "logs"))]


def test_the_settings_pane_opens_the_log_folder(window, opened, tmp_path):
    from PySide6.QtCore import QUrl

    from app.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.runtime, window)
    dialog.log_button.click()
    dialog.reject()
    assert opened == [QUrl.fromLocalFile(str(tmp_path / "user" / "logs"))]
