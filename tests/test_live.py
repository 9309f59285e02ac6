"""The whole companion on real PortAudio streams: a PulseAudio null sink stands in for the room.
What our speaker plays comes back at the microphone unattenuated (the sink's monitor), so the
echo canceller has the hardest echo there is, and the user's question is played into the same sink
by another program. Device loss mid-reply is a real stream killed inside the sound server."""

import os
import subprocess
import threading
import time

import numpy as np
import soundfile

from core.audio.devices import Microphone, Speaker
from core.audio.echo import EchoCanceller
from core.audio.device_worker import LiveAudio
from core.audio.playback import PlaybackQueue
from core.events import Notice, ReplyFinished
from core.session import Session
import pytest

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


def our_stream(kind: str) -> str:
    listing = subprocess.run(["pacmd", f"list-{kind}s"], capture_output=True, text=True, check=True).stdout
    ours = [
        block.split()[0]
        for block in listing.split("index: ")[1:]
        if f'application.process.id = "{os.getpid()}"' in block
    ]
    assert len(ours) == 1, listing
    return ours[0]


def test_spoken_turn_on_real_streams_survives_losing_the_speaker(pulse, stack, speak, tmp_path):
    engine, vad = stack
    vad.reset()
    notices, finished = [], []
    done = threading.Event()
    mic = Microphone("pulse", on_notice=notices.append)
    speaker = Speaker("pulse", on_notice=notices.append)
    playback = PlaybackQueue(speaker.rate)

    def on_event(event):
        if isinstance(event, ReplyFinished):
            finished.append(event)
            done.set()
        if isinstance(event, Notice):
            notices.append(event.message)

    session = Session(engine, vad, playback, on_event=on_event, duplex=True)
    audio = LiveAudio(playback, mic, speaker, EchoCanceller()).start(
        session.feed, on_echo_path_change=lambda: session.hold_barge_in(2.0)
    )
    try:
        question = tmp_path / "question.wav"
        soundfile.write(question, speak("Tell me a long story about a fox who wanted to fly."), 16000)
        subprocess.run(["paplay", "--device=vc_sink", str(question)], check=True, timeout=30)
        deadline = time.monotonic() + 30
        while playback.played < playback.device_rate * 1.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert playback.played >= playback.device_rate * 1.0, f"no reply played; state {session.state}"
        subprocess.run(["pacmd", "kill-sink-input", our_stream("sink-input")], check=True, capture_output=True)
        assert done.wait(90), f"the reply did not finish; state {session.state}"
    finally:
        audio.stop()
        session.close()  # its reply's threads end here, whatever the test found
    assert any("speaker" in n and "default" in n for n in notices), notices
    assert [f.reason for f in finished] == ["complete"], finished  # its own echo never cut it off
    assert session.interruptions == 0
    assert "fox" in session.history[0].text.lower()
    assert len(finished[0].text.split()) > 10
    assert audio.frames > 100 * 5  # the worker kept feeding the session throughout


def test_listen_command_holds_a_conversation(pulse, speak, tmp_path):
    """`voice-companion listen` as a user runs it, on the PulseAudio devices."""
    import sys
    from pathlib import Path

    question = tmp_path / "question.wav"
    soundfile.write(question, speak("What is the capital of France?"), 16000)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "listen", "--input", "pulse", "--output", "pulse", "--seconds", "14"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # "Listening: ..." once the models are loaded and the devices open
        assert first.startswith("Listening"), first + proc.stderr.read()
        subprocess.run(["paplay", "--device=vc_sink", str(question)], check=True, timeout=30)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "you:  What is the capital of France?" in out, out
    assert "reply: " in out and "paris" in out.lower(), out
    assert "ms to the first sound" in out


def test_echo_settling_waits_for_the_canceller_then_ends():
    from core.audio.device_worker import SETTLE_MAX_S, SETTLE_WINDOW, EchoSettling

    rng = np.random.default_rng(0)
    near = rng.normal(0, 0.1, (400, 160)).astype(np.float32)
    settling = EchoSettling()
    settling.start(0.0)
    for i in range(SETTLE_WINDOW * 2):  # cancelling 6 dB: not yet learned
        settling.push(near[i], near[i] * 0.5, True, i * 0.01)
    assert settling.active and abs(settling.reduction_db - 6.0) < 0.1
    for i in range(SETTLE_WINDOW * 2):  # the speaker silent: nothing to judge by
        settling.push(near[i], near[i], False, 1.0 + i * 0.01)
    assert settling.active and abs(settling.reduction_db - 6.0) < 0.1
    for i in range(SETTLE_WINDOW):  # cancelling 26 dB for half a second: learned
        settling.push(near[i], near[i] * 0.05, True, 2.0 + i * 0.01)
    assert not settling.active and settling.reduction_db > 15
    settling.start(10.0)
    settling.push(near[0], near[0], True, 10.0 + SETTLE_MAX_S + 0.01)  # never learned: it ends anyway
    assert not settling.active
