"""Speed and pitch of the companion's voice, applied to the reply while it streams.

Rubber Band's R3 engine in real-time mode (pylibrb), short window, formants kept: of the
stretchers compared on the packaged voice (docs/benchmarks.md, "Speed and pitch: the stretcher"),
the one with exact durations, pitch on target and no loss of intelligibility that also streams.
Only a streaming stretcher gives seamless chunks: whole-signal libraries, run per chunk, jump at
the joins. R2 loses the pitch of this low voice shifted down an octave. The short window costs
less CPU than the standard one at the same accuracy. Kept formants make the pitch knob (and the
emotions' +-2 semitones) sound like the same speaker higher or lower rather than a smaller or
larger one.

Streaming: the stretcher is fed the same fixed 256-sample blocks from the start of a reply however
the chunks are cut (R3's pitch resampler makes its output depend on the block grid), so the
streamed reply equals `apply_prosody` on the whole utterance sample for sample. `process` costs a
few ms of one core per second of speech (`voice-companion bench style`); cutting long chunks
shorter leaves the output unchanged and bounds the wait. The stretcher also holds back 40-90 ms of
look-ahead at the end of each chunk, which comes out with the next chunk or `flush`: the voice
streams faster than it plays, so the listener does not wait on it. Rubber Band is GPL, as is
Piper, which the app already ships.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pylibrb

from core.style.presets import PITCH_RANGE, SPEED_RANGE

ENGINE = "Rubber Band R3, real-time, short window, formants kept (pylibrb)"
BLOCK = 256  # samples per stretcher call: a fixed grid makes the output independent of chunking
OPTIONS = (
    pylibrb.Option.PROCESS_REALTIME
    | pylibrb.Option.ENGINE_FINER
    | pylibrb.Option.WINDOW_SHORT
    | pylibrb.Option.FORMANT_PRESERVED
    | pylibrb.Option.THREADING_NEVER
)
_EMPTY = np.zeros(0, np.float32)
PIECE_S = 0.125  # input per part handed on by `pieces`


def check_prosody(rate: int, speed: float, semitones: float) -> None:
    """Refuses settings outside what the user can choose, with a message that says which."""
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise ValueError(f"speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}, got {speed}")
    if not PITCH_RANGE[0] <= semitones <= PITCH_RANGE[1]:
        raise ValueError(
            f"pitch must be between {PITCH_RANGE[0]:+g} and {PITCH_RANGE[1]:+g} semitones, got {semitones}"
        )
    if not pylibrb.MIN_SAMPLE_RATE <= rate <= pylibrb.MAX_SAMPLE_RATE:
        raise ValueError(
            f"sample rate must be between {pylibrb.MIN_SAMPLE_RATE} and {pylibrb.MAX_SAMPLE_RATE} Hz, got {rate}"
        )


class StreamingProsody:
    """Speed (pitch kept) and pitch (duration kept) of one voice stream, chunk by chunk.

    `process` returns the styled audio for as much of the input as the stretcher could finish;
    `flush` at the end of a reply returns the rest and readies the stream for the next reply;
    `reset` drops everything held (a barge-in). At speed 1 and 0 semitones samples pass untouched.
    """

    def __init__(self, rate: int, speed: float = 1.0, semitones: float = 0.0) -> None:
        check_prosody(rate, speed, semitones)
        self.rate, self.speed, self.semitones = rate, float(speed), float(semitones)
        self.identity = self.speed == 1.0 and self.semitones == 0.0
        self._stretcher = (
            None
            if self.identity
            else pylibrb.RubberBandStretcher(
                rate, 1, OPTIONS, initial_time_ratio=1.0 / self.speed, initial_pitch_scale=2.0 ** (self.semitones / 12)
            )
        )
        if self._stretcher is not None:
            self._stretcher.set_max_process_size(BLOCK)
        self.reset()

    def reset(self) -> None:
        self._pending = _EMPTY
        self._taken = 0  # input samples of this reply
        self._given = 0  # output samples of this reply
        if self._stretcher is None:
            return
        self._stretcher.reset()
        # Real-time mode neither pads nor compensates its own delay: prime it with the silence it
        # asks for and drop as many samples of output, so output sample 0 is input sample 0.
        self._skip = self._stretcher.get_start_delay()
        self._stretcher.process(np.zeros((1, self._stretcher.get_preferred_start_pad()), np.float32))

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32)
        if self._stretcher is None:
            return chunk
        self._taken += len(chunk)
        samples = np.concatenate([self._pending, chunk])
        whole = len(samples) - len(samples) % BLOCK
        self._pending = samples[whole:]
        return self._emit([self._run(samples[i : i + BLOCK]) for i in range(0, whole, BLOCK)])

    def pieces(self, chunk: np.ndarray) -> Iterator[np.ndarray]:
        """`process(chunk)` handed on in parts of PIECE_S of input, each as soon as it is ready:
        the first sound of a clause waits for its first part only. The same samples as `process`
        (the stretcher sees the same fixed blocks however the input is cut)."""
        step = max(BLOCK, int(PIECE_S * self.rate) // BLOCK * BLOCK)
        for start in range(0, len(chunk), step):
            out = self.process(chunk[start : start + step])
            if len(out):
                yield out

    def flush(self) -> np.ndarray:
        """The rest of the reply; afterwards the stream is ready for the next one."""
        if self._stretcher is None:
            return _EMPTY
        pieces = [self._run(self._pending, final=True)]
        while self._stretcher.available() > 0:
            pieces.append(self._stretcher.retrieve_available()[0])
        tail = self._emit(pieces)
        # The final block also brings out the stretcher's window tail, tens of ms past the end:
        # cut it, so the reply lasts exactly its input / speed.
        excess = self._given - round(self._taken / self.speed)
        tail = tail[: max(0, len(tail) - excess)] if excess > 0 else np.pad(tail, (0, -excess))
        self.reset()
        return tail

    def _run(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        assert self._stretcher is not None  # only a change of speed or pitch runs the stretcher
        self._stretcher.process(block[None, :], final=final)
        return self._stretcher.retrieve_available()[0]

    def _emit(self, pieces: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(pieces) if pieces else _EMPTY
        drop = min(self._skip, len(out))
        self._skip -= drop
        out = out[drop:]
        self._given += len(out)
        return out


def apply_prosody(audio: np.ndarray, rate: int, speed: float = 1.0, semitones: float = 0.0) -> np.ndarray:
    """A whole utterance at this speed and pitch: the reference the streamed output is held to."""
    stream = StreamingProsody(rate, speed, semitones)
    return np.concatenate([stream.process(audio), stream.flush()])
