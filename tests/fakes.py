"""Stand-ins that let the session's logic run without models or wall-clock timing.

`FakeEngine` speaks a scripted reply one event at a time, only when the test says so, and records
every thread that enters its "model"; `ScriptedVad` reports the speech probabilities a schedule
dictates; `Rig` wires them to a real Session and PlaybackQueue on a virtual clock and plays the
part of the audio worker, the speaker and the user. After every 10 ms tick the rig waits until
every reply thread is either waiting for the test's next command or gone, so each schedule runs
the same way every time, whatever the machine's load.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from core.audio.devices import DeviceError, DeviceInfo
from core.audio.device_worker import SilentInput, SilentOutput
from core.audio.playback import PlaybackQueue
from core.audio.simulated import VoiceTrack
from core.events import CoreEvent, ReplyFinished
from core.session import Session
from core.turns import TurnConfig
from models.engine import (
    CancelToken,
    Capabilities,
    EndReason,
    Message,
    ModelLease,
    ReplyAudio,
    ReplyDone,
    ReplyText,
    StageTime,
    Style,
    TranscriptFinal,
    UserTurn,
    single_threaded,
)
from core.audio.format import FRAME, RATE
from models.devices import Machine

WINDOW = 512
SETTLE_S = 10.0  # a reply thread that is neither waiting nor gone by then is stuck: a deadlock


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedVad:
    """Speech probability per 512-sample window, read off `probability(position)` where position
    is the stream position of the window's first sample. The rig's frames carry their own stream
    positions as sample values, so frames the session never pushes (half duplex while it speaks)
    and resets (which drop the pending samples, as the real model does) keep it exact."""

    def __init__(self) -> None:
        self.probability = lambda position: 0.0
        self.level = lambda position: -30.0  # dBFS: one level for everything unless a test says
        self._pending = np.zeros(0, np.float32)

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> list[float]:
        return [prob for prob, _ in self.push_levels(samples)]

    def push_levels(self, samples: np.ndarray) -> list[tuple[float, float]]:
        buf = np.concatenate([self._pending, samples])
        n = len(buf) // WINDOW
        self._pending = buf[n * WINDOW :]
        at = [int(buf[i * WINDOW]) for i in range(n)]
        return [(self.probability(p), self.level(p)) for p in at]


class ScriptedJudge:
    """Answers at once: `complete(audio)` decides (default: every pause ends the turn)."""

    def __init__(self, complete=lambda audio: 1.0) -> None:
        self.complete = complete
        self.asked: list[int] = []
        self._answers: dict[int, float] = {}
        self.closed = False

    def ask(self, key: int, audio: np.ndarray) -> None:
        self.asked.append(key)
        self._answers[key] = self.complete(audio)

    def verdict(self, key: int) -> float | None:
        return self._answers.get(key)

    def close(self) -> None:
        self.closed = True


class FakeModel:
    """The engine's one model: entered for the whole of a reply, by one thread at a time."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    @single_threaded
    def generate(self, call: "Call", token: CancelToken):
        self.threads.append(threading.current_thread().name)
        yield from call.commands(token)


@dataclass
class Call:
    """One `respond`: its turn, what it said, and the handshake with the test."""

    number: int
    turn: UserTurn
    token: CancelToken
    script: list = field(default_factory=list)
    thread: str = ""
    emitted: list = field(default_factory=list)
    closed: bool = False
    idle: threading.Event = field(default_factory=threading.Event)
    _go: threading.Event = field(default_factory=threading.Event)

    @property
    def transcript(self) -> str:
        return self.script[0].text

    @property
    def reply_text(self) -> str:
        return " ".join(e.delta.strip() for e in self.script if isinstance(e, ReplyText))

    @property
    def finished(self) -> bool:
        return self.closed or not self.script[len(self.emitted) :]

    def commands(self, token: CancelToken):
        while len(self.emitted) < len(self.script):
            self._go.clear()
            self.idle.set()
            while not self._go.wait(0.002):
                if token.cancelled:
                    self.idle.clear()
                    yield ReplyDone(EndReason.CANCELLED)
                    return
            self.idle.clear()
            event = self.script[len(self.emitted)]
            self.emitted.append(event)
            yield event

    def advance(self) -> None:
        """Let the next event out; returns once the reply thread has dealt with it."""
        self.idle.clear()
        self._go.set()


class FakeEngine:
    capabilities = Capabilities(
        streaming_text=True, streaming_audio=True, instruction_styles=True, voice_matching=False, native_speed=True
    )
    output_rate = RATE

    def __init__(self, clauses: int = 3, clause_ms: int = 400) -> None:
        self.lease = ModelLease()
        self.model = FakeModel()
        self.calls: list[Call] = []
        self.clauses, self.clause_ms = clauses, clause_ms
        self.errors: list[BaseException] = []
        self.primed: list[tuple[tuple[Message, ...], Style]] = []  # what the session let it prepare, in order
        self._lock = threading.Lock()

    def speed_left(self, speed: float) -> float:
        return 1.0

    def prime(self, history: tuple[Message, ...], style: Style) -> None:
        with self._lock:
            self.primed.append((history, style))

    def script(self, number: int, turn: UserTurn) -> list:
        said = turn.text if turn.text is not None else f"question {number} of {len(turn.audio)} samples"
        events: list = [TranscriptFinal(said if turn.verbatim is None else "")]
        for c in range(self.clauses):
            events.append(ReplyText(f"reply {number} clause {c} words here."))
            events.append(ReplyAudio(np.full(RATE * self.clause_ms // 1000, 0.1 + 0.01 * c, np.float32), RATE))
        events.append(ReplyDone(EndReason.COMPLETE))
        return events

    def respond(self, turn: UserTurn, style: Style, token: CancelToken):
        with self._lock:
            call = Call(len(self.calls) + 1, turn, token)
            call.script = self.script(call.number, turn)
            call.thread = threading.current_thread().name
            self.calls.append(call)
        try:
            waited = self.lease.take(token)
            if waited is None:
                yield ReplyDone(EndReason.CANCELLED)
                return
            try:
                yield StageTime("handover", waited)
                yield from self.model.generate(call, token)
            except Exception as exc:
                self.errors.append(exc)
                raise
            finally:
                self.lease.give_back()
        finally:
            call.closed = True
            call.idle.set()


class Rig:
    """A session on a virtual clock with the fake engine and VAD: the test is the audio worker."""

    def __init__(self, config: TurnConfig = TurnConfig(), duplex: bool = True, judge=None, **engine) -> None:
        self.clock = VirtualClock()
        self.engine = FakeEngine(**engine)
        self.vad = ScriptedVad()
        self.playback = PlaybackQueue(RATE, clock=self.clock)
        self.events: list[CoreEvent] = []
        self.session = Session(
            self.engine,
            self.vad,
            self.playback,
            config,
            on_event=self.events.append,
            duplex=duplex,
            make_chain=lambda style, rate: None,
            clock=self.clock,
            judge=judge,
        )
        self.speech: list[tuple[int, int]] = []  # (start, end) sample positions the user speaks
        self.position = 0  # samples of the stream so far; each frame's samples are their positions
        self.played = 0
        self.thread_errors: list[BaseException] = []
        self.auto_engine = True
        # Threads of other tests (a real session a failed test left behind) are not this rig's.
        self._foreign = set(threading.enumerate())

    # ---- the user --------------------------------------------------------------------------

    def say_for(self, ms: int) -> None:
        start = self.position
        self.speech.append((start, start + RATE * ms // 1000))
        self.vad.probability = self._probability
        self.run(ms)

    def quiet_for(self, ms: int) -> None:
        self.vad.probability = self._probability
        self.run(ms)

    def _probability(self, position: int) -> float:
        return 0.95 if any(a <= position < b for a, b in self.speech) else 0.02

    # ---- time -------------------------------------------------------------------------------

    def run(self, ms: int) -> None:
        for _ in range(max(1, ms // 10)):
            self.tick()

    def tick(self) -> None:
        self.clock.advance(FRAME / RATE)
        self.played += int(np.count_nonzero(self.playback.read(FRAME)))
        frame = np.arange(self.position, self.position + FRAME, dtype=np.float64).astype(np.float32)
        self.position += FRAME
        self.session.feed(frame, self.clock())
        self.settle()
        if self.auto_engine:
            for call in self.engine.calls:
                if call.idle.is_set() and not call.closed and not call.token.cancelled:
                    call.advance()
            self.settle()

    def settle(self) -> None:
        """Wait until every reply thread waits for the test or has ended."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            busy = []
            for thread in threading.enumerate():
                if not thread.name.startswith("reply-") or thread in self._foreign:
                    continue
                call = next((c for c in self.engine.calls if c.thread == thread.name), None)
                if call is not None and call.closed:
                    thread.join(max(0.0, deadline - time.monotonic()))
                    if thread.is_alive():
                        busy.append(thread.name)
                elif call is None or not call.idle.is_set() or call.token.cancelled:
                    busy.append(thread.name)  # a cancelled one is on its way out
            if not busy:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"reply threads stuck (a deadlock?): {busy}")
            time.sleep(0.0002)

    # ---- what happened -----------------------------------------------------------------------

    @property
    def finished(self) -> list[ReplyFinished]:
        return [e for e in self.events if isinstance(e, ReplyFinished)]

    def live_reply_threads(self) -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("reply-") and t.is_alive() and t not in self._foreign
        ]


class QuickEngine(FakeEngine):
    """Answers at once: "answer to: <question>", one clause, `seconds` of audio."""

    def __init__(self, seconds: float = 0.3) -> None:
        super().__init__()
        self.seconds = seconds

    def respond(self, turn: UserTurn, style: Style, token: CancelToken):
        self.calls.append(turn)
        yield TranscriptFinal(turn.text or "")
        yield ReplyText(f"answer to: {turn.text}")
        yield ReplyAudio(np.full(int(16000 * self.seconds), 0.1, np.float32), 16000)
        yield ReplyDone(EndReason.COMPLETE)


def _info(name: str, inputs: int, outputs: int) -> DeviceInfo:
    return DeviceInfo(0, name, "fake", inputs, outputs, 16000.0, inputs > 0, outputs > 0)


class FakeMicrophone(SilentInput):
    """Silence, and whatever the test says into it (16 kHz), at the pace of a real device."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.device = _info(name, 1, 0)
        self.voice = VoiceTrack()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def say(self, audio: np.ndarray) -> int:
        """The user speaks `audio` from the next frame on; returns the sample position it ends at."""
        at = self.position + 160
        self.voice.add(audio, at)
        return at + len(audio)

    @property
    def position(self) -> int:
        return self._taken

    def read(self, n: int) -> np.ndarray:
        start = self._taken
        out = super().read(n)
        return out + self.voice.frame(start, len(out))


class FakeSpeaker(SilentOutput):
    def __init__(self) -> None:
        super().__init__()
        self.device = _info("Fake speaker", 0, 2)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class FakeDevices:
    """The machine's devices: `inputs` names the microphones plugged in (none at first)."""

    def __init__(self, inputs: list[str], speaker: bool = True) -> None:
        self.inputs = inputs
        self.has_speaker = speaker
        self.mics: list[FakeMicrophone] = []
        self.speakers: list[FakeSpeaker] = []
        self.rescans = 0

    def list(self) -> list[DeviceInfo]:
        return [_info(n, 1, 0) for n in self.inputs] + ([_info("Fake speaker", 0, 2)] if self.has_speaker else [])

    def signature(self) -> object:
        return tuple(self.inputs), self.has_speaker

    def rescan(self) -> None:
        self.rescans += 1

    def microphone(self, name, on_notice) -> FakeMicrophone:
        if not self.inputs:
            raise DeviceError("no input device found")
        self.mics.append(FakeMicrophone(self.inputs[0]))
        return self.mics[-1]

    def speaker(self, name, on_notice) -> SilentOutput:
        if not self.has_speaker:
            raise DeviceError("no output device found")
        out = FakeSpeaker()
        self.speakers.append(out)
        return out


# A Linux machine with an NVIDIA GPU as models.devices would find it (the device plans' tests).
NVIDIA = Machine(
    platform="linux",
    torch_cuda=True,
    llama_gpu="CUDA",
    ct2_cuda=True,
    onnx_providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
)
