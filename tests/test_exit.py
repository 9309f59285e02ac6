"""A process that ends while a reply is still being written leaves the models cleanly: every
live reply is cancelled and its workers leave the model before the interpreter tears it down."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_exit_cancels_live_replies_and_waits_for_their_workers(tmp_path):
    marker = tmp_path / "left"
    script = textwrap.dedent(f"""
        import threading, time
        from models.engine import CancelToken, ModelLease, start_reply

        inside = threading.Event()

        def work(events):
            token = tokens[0]
            inside.set()
            while not token.cancelled:  # a model's steps, each checking the token
                time.sleep(0.01)
            time.sleep(0.2)  # the step in progress finishes
            open({str(marker)!r}, "w").write("left the model")

        tokens = [CancelToken()]
        reply = start_reply(ModelLease(), tokens[0], "reply", work)
        next(reply)  # the handover: the worker is running
        inside.wait(5)
        # the process ends here, with the reply still being written
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "left the model"


def test_exit_closes_an_open_turn_judge():
    # Registered first, so it runs after the module's own exit handler (atexit runs in reverse).
    script = textwrap.dedent("""
        import atexit
        atexit.register(lambda: print("closed" if not judge._thread.is_alive() else "running"))

        import time
        import numpy as np
        from core.audio import turn_end

        class Slow:
            def complete(self, audio):
                time.sleep(0.3)
                return 0.5

        judge = turn_end.TurnJudge(Slow())
        judge.ask(1, np.zeros(1600, np.float32))
        time.sleep(0.05)  # the judge is inside the model when the process ends
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed"
