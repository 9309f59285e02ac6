"""Whether a pause ends the user's turn, judged from how the speech before it sounds.

Silence alone cannot tell "What time is it?" (done) from "I was thinking about, um" (not done):
people pause 0.3-1.5 s inside sentences. Smart Turn v3.2 (an ONNX model shipped in the
pipecat-ai wheel) hears the last 8 s of the turn as Whisper's log-mel features and gives the
probability that the turn is complete. The session asks at every pause; a turn judged complete
ends after a short silence, one judged unfinished waits for the user's end-of-turn silence.

Inference takes tens of milliseconds, too long for the audio worker's 10 ms frames, so the
judge runs on a thread of its own and the session reads its verdict on a later frame.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import weakref
from pathlib import Path

import numpy as np

from models.engine import single_threaded
from models.registry import ModelStore
from core.audio.format import RATE

log = logging.getLogger(__name__)

WINDOW_S = 8  # the model hears the last 8 s of the turn, zeros before a shorter one
_NORM_EPS = 1e-7


class SmartTurn:
    def __init__(
        self, model_path: Path, threads: int = 1, providers: tuple[str, ...] = ("CPUExecutionProvider",)
    ) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        from models.registry.offline import quiet_onnxruntime

        quiet_onnxruntime()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=list(providers)
        )  # see models.devices
        # Whisper's own log-mel (80 bins, 10 ms hop), over an 8 s window.
        self._features = FeatureExtractor(
            feature_size=80, sampling_rate=RATE, hop_length=160, chunk_length=WINDOW_S, n_fft=400
        )

    @single_threaded
    def complete(self, audio: np.ndarray) -> float:
        """Probability (0..1) that the turn in `audio` (16 kHz mono, ending at the pause) is over."""
        n = WINDOW_S * RATE
        window = np.zeros(n, np.float32)
        tail = audio[-n:].astype(np.float32, copy=False)
        window[n - len(tail) :] = tail
        window = (window - window.mean()) / np.sqrt(window.var() + _NORM_EPS)
        mel = self._features(window, padding=0)[:, : WINDOW_S * 100]
        out = self._session.run(None, {"input_features": mel[None].astype(np.float32)})[0]
        return float(out[0, 0])  # the exported model ends in a sigmoid: already a probability


# Judges not closed yet: at exit their thread must be out of onnxruntime before the interpreter
# tears the model down (a daemon thread inside a freed session crashes the process).
_OPEN: weakref.WeakSet[TurnJudge] = weakref.WeakSet()


@atexit.register
def _close_open_judges() -> None:
    for judge in list(_OPEN):
        judge.close(timeout=1.0)


class TurnJudge:
    """Asks a SmartTurn about one pause at a time on its own thread. `ask` replaces any question
    not yet taken up; `verdict(key)` is the answer for that pause once there is one."""

    def __init__(self, model: SmartTurn) -> None:
        self._model = model
        self._lock = threading.Condition()
        self._question: tuple[int, np.ndarray] | None = None
        self._answer: tuple[int, float] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="turn-judge", daemon=True)
        self._thread.start()
        _OPEN.add(self)

    def ask(self, key: int, audio: np.ndarray) -> None:
        with self._lock:
            self._question = (key, audio[-WINDOW_S * RATE :].copy())
            self._lock.notify()

    def verdict(self, key: int) -> float | None:
        with self._lock:
            return self._answer[1] if self._answer is not None and self._answer[0] == key else None

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=timeout)
        _OPEN.discard(self)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._question is None and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                question, self._question = self._question, None
                assert question is not None  # the wait above ends on a question or on close
                key, audio = question
            try:
                probability = self._model.complete(audio)
            except Exception:  # a failed judgement leaves the pause to the silence rule
                log.exception("the end-of-turn model failed")
                continue
            with self._lock:
                self._answer = (key, probability)


def load_turn_judge(store: ModelStore | None = None) -> TurnJudge:
    """A judge of whether a pause ends the turn (Smart Turn v3.2), on a thread of its own; the
    model is loaded once per process and the session that gets the judge closes it."""
    return TurnJudge(_smart_turn((store or ModelStore()).ensure("smart-turn-v3.2") / "smart-turn.onnx"))


@functools.lru_cache(maxsize=2)
def _smart_turn(path: Path) -> SmartTurn:
    from models.devices import plan_devices, probe_machine

    return SmartTurn(path, providers=plan_devices("auto", probe_machine(torch=False)).turn_model.providers)
