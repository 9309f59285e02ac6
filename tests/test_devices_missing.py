"""A machine without a microphone (or speaker) is not a dead end, and the microphone's mute is a hard
one. The runtime drives a real conversation (session, audio worker, echo canceller, voice activity)
on devices a test hands it: first none with an input, then one that has appeared."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.audio.io import load_voice
from core.events import AudioStatus, Levels, Notice, ReplyEnd, ReplyFinished, State, StateChanged
from core.app_backend import Runtime
from core.settings import Settings, UserFiles
from tests.fakes import FakeDevices, QuickEngine

QUESTION = Path(__file__).resolve().parent.parent / "assets" / "questions" / "q01.flac"
pytestmark = pytest.mark.timeout(120)


class Recorder:
    def __init__(self) -> None:
        self.events: list = []
        self.changed = threading.Condition()

    def __call__(self, event) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def wait_for(self, test, after: int = 0, timeout: float = 30.0):
        """The first event from number `after` on that passes `test` (fails after `timeout`:
        something hung)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for event in self.events[after:]:
                    if test(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such event; got {self.events[-20:]}")
                self.changed.wait(left)

    def mark(self) -> int:
        with self.changed:
            return len(self.events)

    def since(self, mark: int) -> list:
        with self.changed:
            return self.events[mark:]


@pytest.fixture(scope="module")
def vad():
    from core.audio.vad import load_vad

    return load_vad()


@pytest.fixture
def make_runtime(tmp_path, vad):
    runtimes = []

    def make(devices: FakeDevices, settings: Settings = Settings()) -> tuple[Runtime, Recorder]:
        files = UserFiles(tmp_path / f"user{len(runtimes)}")
        files.presets.mkdir(parents=True)
        files.save_settings(settings)
        seen = Recorder()
        runtime = Runtime(
            seen, files, load_engine=lambda _s: QuickEngine(), vad=vad, devices=devices, device_poll_s=0.05
        )
        runtimes.append(runtime)
        runtime.start()
        assert runtime.wait_ready(60)
        return runtime, seen

    yield make
    for runtime in runtimes:
        runtime.shutdown()


def test_without_a_microphone_typed_questions_are_answered_and_the_microphone_is_picked_up(make_runtime):
    devices = FakeDevices(inputs=[])
    runtime, seen = make_runtime(devices)
    status = seen.wait_for(lambda e: isinstance(e, AudioStatus))
    assert status.microphone is None and status.speaker == "Fake speaker"
    notice = seen.wait_for(lambda e: isinstance(e, Notice) and "No microphone" in e.message)
    assert notice.level == "warning"
    for how_to_fix in ("plug in", "Settings", "privacy", "aloud"):
        assert how_to_fix in notice.message
    assert not any(isinstance(e, Notice) and e.level == "error" for e in seen.events)

    # A typed question is answered, spoken on the speaker there is.
    assert runtime.say("Is anybody there?")
    finished = seen.wait_for(lambda e: isinstance(e, ReplyFinished))
    assert finished.reason == ReplyEnd.COMPLETE and finished.text == "answer to: Is anybody there?"
    assert [e.role for e in runtime.history] == ["user", "assistant"]
    assert devices.rescans == 0  # nothing changed: the audio was not reopened

    # A microphone is plugged in: the next poll picks it up, and the conversation goes on.
    mark = seen.mark()
    devices.inputs = ["Fake USB microphone"]
    seen.wait_for(lambda e: isinstance(e, AudioStatus) and e.microphone is not None, after=mark)
    assert devices.rescans == 1 and len(devices.mics) == 1
    found = [e for e in seen.since(mark) if isinstance(e, Notice)]
    assert any("microphone found: Fake USB microphone" in e.message for e in found), found
    assert not any("No microphone" in e.message for e in found)
    assert not runtime.conversation.missing
    assert [m.role for m in runtime.conversation.session.history] == ["user", "assistant"]


def test_without_any_device_answers_come_as_text(make_runtime):
    runtime, seen = make_runtime(FakeDevices(inputs=[], speaker=False))
    notice = seen.wait_for(lambda e: isinstance(e, Notice) and "No microphone" in e.message)
    assert "answered in text" in notice.message
    seen.wait_for(lambda e: isinstance(e, Notice) and "No speaker" in e.message)
    assert runtime.say("Hello?")
    finished = seen.wait_for(lambda e: isinstance(e, ReplyFinished))
    assert finished.text == "answer to: Hello?"


def test_mute_silences_the_microphone_before_anything_hears_it(make_runtime):
    devices = FakeDevices(inputs=["Fake microphone"])
    settings = Settings(echo_cancellation=False, noise_suppression=False)
    runtime, seen = make_runtime(devices, settings)
    seen.wait_for(lambda e: isinstance(e, AudioStatus) and e.microphone == "Fake microphone" and not e.muted)
    mic = devices.mics[-1]
    question = load_voice(QUESTION)

    runtime.set_muted(True)
    seen.wait_for(lambda e: isinstance(e, AudioStatus) and e.muted)
    mark = seen.mark()
    end = mic.say(question)
    while mic.position < end + 16000:  # the whole question and a second after it reach the worker
        time.sleep(0.05)
    runtime.wait_ready(10)
    muted = seen.since(mark)
    levels = [e.input_db for e in muted if isinstance(e, Levels)]
    assert levels and max(levels) == -90.0  # the worker got only silence
    assert not [e for e in muted if isinstance(e, StateChanged) and e.state == State.HEARING]
    assert not runtime.history

    runtime.set_muted(False)
    mark = seen.mark()
    seen.wait_for(lambda e: isinstance(e, AudioStatus) and not e.muted, after=mark)
    mic.say(question)
    seen.wait_for(lambda e: isinstance(e, StateChanged) and e.state == State.HEARING, after=mark)
    assert max(e.input_db for e in seen.since(mark) if isinstance(e, Levels)) > -30
