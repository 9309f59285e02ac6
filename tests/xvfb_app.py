"""The desktop app on a real X server, for tests/test_xvfb.py: the real window, tray and global key,
with the real models in a simulated room. It reports what happens as JSON lines on stdout and
takes commands, one a line, on stdin; when the user is heard (the push-to-talk key went down) it
says the sample question into the room.

    python -m tests.xvfb_app DATA_DIR      (DISPLAY set; QT_QPA_PLATFORM=xcb)
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main(data_dir: str) -> int:
    from PySide6.QtCore import QSocketNotifier

    from app.main import SAMPLE, _application
    from app.main_window import MainWindow
    from core.audio.io import load_voice
    from core.events import AudioStatus, ReplyFinished, State, StateChanged
    from core.app_backend import Runtime
    from core.settings import Settings, UserFiles

    app = _application([])
    files = UserFiles(Path(data_dir))
    files.presets.mkdir(parents=True, exist_ok=True)
    files.save_settings(Settings(mode="push-to-talk", push_to_talk_key="F8", global_push_to_talk=True))
    window = MainWindow(lambda post: Runtime(post, files, simulated=True))
    app.setQuitOnLastWindowClosed(window.tray is None)
    question = load_voice(SAMPLE)
    heard = []

    def on_event(event) -> None:
        if isinstance(event, StateChanged):
            say(state=str(event.state))
            if event.state == State.HEARING and not heard:
                heard.append(True)
                say(speaking=window.runtime.speak(question))
        elif isinstance(event, ReplyFinished):
            say(reply=event.text, reason=str(event.reason))
        elif isinstance(event, AudioStatus):
            say(muted=event.muted)

    window.bridge.arrived.connect(on_event)
    window.show()
    window.runtime.start()
    if not window.runtime.wait_ready(300):
        say(error="the models did not load")
        return 1
    say(
        ready=True,
        tray=window.tray is not None,
        global_key=window.global_key is not None,
        problem=window.global_key_problem,
        window=int(window.winId()),
    )

    tray = window.tray
    commands = {
        "tray mute": lambda: tray.mute_action.trigger(),
        "tray ptt": lambda: tray.ptt_action.trigger(),
        "tray toggle window": lambda: tray.show_action.trigger(),
        "tray stop": lambda: tray.stop_action.trigger(),
        "tray quit": lambda: tray.quit_action.trigger(),
        "close": window.close,
    }

    def command() -> None:
        line = sys.stdin.readline().strip()
        if not line:
            notifier.setEnabled(False)  # the test closed our stdin
            return
        commands[line]()
        say(
            done=line,
            visible=window.isVisible(),
            mode=window.runtime.settings.mode,
            tray_notice_shown=window.runtime.settings.tray_notice_shown,
        )

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Read)
    notifier.activated.connect(command)
    code = app.exec()

    # The exit checks: every thread of ours ends within 2 s, the settings and history are on disk,
    # the conversation (and with it the audio) is closed.
    notifier.setEnabled(False)
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    for thread in others:
        thread.join(timeout=2)
    saved, _ = files.load_settings()
    history, _ = files.load_history()
    say(
        exited=code,
        threads=[t.name for t in others if t.is_alive()],
        conversation_closed=window.runtime.conversation is None,
        settings_saved=saved == window.runtime.settings,
        history=[e.role for e in history],
    )
    return code


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main(sys.argv[1]))
