"""The log: one rotating file in the user's data folder, plus a crash file for native faults.

Every entry point calls `setup_logging` once at start. After that, every module's
`logging.getLogger(__name__)` writes to `logs/voice-companion.log` (a few MB, a few old files
kept), exceptions nobody caught (main thread or any other) are logged with their traceback, and a
segmentation fault or abort in a C extension (llama.cpp, onnxruntime, PortAudio) leaves every
thread's Python stack in `logs/crash.log`: Python cannot log anything once the process is dying,
so `faulthandler` writes there itself, straight to the file descriptor.

The log writes nothing to the terminal: the command line's refusals stay one line. Like all the
user's files, the log folder is 0700 and its files 0600.
"""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import sys
import threading
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import TextIO, cast

from models.registry.atomic import PRIVATE_FILE, make_private_dir

LOG_FILE = "voice-companion.log"
CRASH_FILE = "crash.log"
MAX_BYTES = 2 * 1024 * 1024  # per file; with BACKUPS old files the log never passes 8 MB
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"
HANDLER_NAME = "voice-companion-file"  # how a second call finds the handler the first one added

log = logging.getLogger(__name__)

# The crash file stays open for the life of the process: faulthandler keeps only its descriptor and
# writes to it when the process dies, so closing it would send a crash report into whatever file
# reuses the number.
_crash_file: TextIO | None = None
_lock = threading.Lock()


def log_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "logs"


def log_folder(data_dir: Path) -> Path:
    """The folder this process logs to; before `setup_logging`, the one it would use for `data_dir`."""
    current = current_log_file()
    return current.parent if current is not None else log_dir(data_dir)


def current_log_file() -> Path | None:
    """The file the log goes to in this process, or None before `setup_logging`."""
    handler = _our_handler()
    return Path(handler.baseFilename) if handler is not None else None


def setup_logging(data_dir: Path) -> Path:
    """Log to `data_dir/logs/voice-companion.log` and native crashes to `crash.log` beside it;
    returns the log file. Calling it again for the same folder changes nothing; for another folder
    the log moves there. OSError when the folder cannot be written."""
    global _crash_file
    folder = log_dir(data_dir)
    make_private_dir(folder)
    path = (folder / LOG_FILE).resolve()
    with _lock:
        root = logging.getLogger()
        old = _our_handler()
        if old is not None and Path(old.baseFilename) == path:
            return path
        crash = _open_crash_file(folder)
        try:
            handler = _PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        except OSError:
            crash.close()
            raise
        handler.set_name(HANDLER_NAME)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.setLevel(logging.INFO)
        if old is not None:
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        faulthandler.enable(file=crash, all_threads=True)
        if _crash_file is not None:  # only now: faulthandler has let go of the old descriptor
            _crash_file.close()
        _crash_file = crash
        _install_hooks()
    log.info("logging to %s (pid %d, Python %s)", path, os.getpid(), sys.version.split()[0])
    return path


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """Every file it opens, the first and each one after a rollover, is made 0600."""

    def _open(self) -> io.TextIOWrapper:
        return cast(
            io.TextIOWrapper,
            open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=_private_opener),
        )


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)


def _our_handler() -> RotatingFileHandler | None:
    return next(
        (
            h
            for h in logging.getLogger().handlers
            if isinstance(h, RotatingFileHandler) and h.get_name() == HANDLER_NAME
        ),
        None,
    )


def _open_crash_file(folder: Path) -> TextIO:
    """crash.log in append mode, with a line naming this process so a report below it can be
    matched to the run in the log. Past MAX_BYTES the old reports move to crash.log.1 first."""
    path = folder / CRASH_FILE
    if path.exists() and path.stat().st_size > MAX_BYTES:
        path.replace(path.with_name(CRASH_FILE + ".1"))
    crash = open(path, "a", encoding="utf-8", opener=_private_opener)  # noqa: SIM115 (open until the process ends)
    crash.write(f"--- pid {os.getpid()} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    crash.flush()
    return crash


def _install_hooks() -> None:
    """Exceptions nobody caught, on the main thread or any other, go to the log with their
    traceback, then on to the hook that was there before (which prints them as usual)."""
    if getattr(sys.excepthook, "_voice_companion", False):
        return
    previous_sys, previous_thread = sys.excepthook, threading.excepthook

    def sys_hook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            log.critical("uncaught exception", exc_info=(kind, value, traceback))
        previous_sys(kind, value, traceback)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread is not None else "?"
            exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
            log.critical("uncaught exception in thread %s", name, exc_info=exc_info)  # type: ignore[arg-type]
        previous_thread(args)

    sys_hook._voice_companion = True  # type: ignore[attr-defined]  # marks the hook as installed
    sys.excepthook, threading.excepthook = sys_hook, thread_hook
