"""Speed and pitch of the companion's voice, applied to the reply while it streams.

Rubber Band's R3 engine in real-time mode, short window, formants kept, through pedalboard
(GPL-3.0): of the stretchers compared on the packaged voice (docs/benchmarks.md, "Speed and pitch:
the stretcher"), the one with exact durations, pitch on target and no loss of intelligibility. R2
loses the pitch of this low voice shifted down an octave. The short window costs less CPU than the
standard one at the same accuracy. Kept formants make the pitch knob (and the emotions' +-2
semitones) sound like the same speaker higher or lower rather than a smaller or larger one.
(pylibrb, which streamed the same engine block by block, is GPL-2.0-only and cannot ship beside
Piper's GPL-3.0; see docs/packaging.md.)

Streaming: pedalboard runs Rubber Band over one whole buffer per call, and a call's output cannot
be continued by the next. So the reply is cut into segments at its own quiet moments (the gaps
between words and clauses: QUIET_FRAMES frames below QUIET_DB of the loudest frame so far)
and each segment is stretched by one call, with MARGIN of the real input on either side as context.
Consecutive segments are cross-faded over FADE, in the middle of the quiet run, so the joins fall
where there is next to nothing to join. The cuts are found on a fixed 10 ms frame grid from the
start of the reply and depend on the samples only, so the streamed reply equals `apply_prosody` on
the whole utterance sample for sample however the chunks are cut. Speech that goes on for
MAX_SEGMENT without such a gap is cut at its quietest frame edge (rare in the packaged voice:
its gaps come every 0.3 s, at most 1.2 s apart); the first segment after a silence already at
FIRST_SEGMENT, so that the first sound of a phrase waits for a short call only. Quiet-only segments (a clause's trailing
silence) are resampled instead of stretched: there is nothing to keep the pitch of, and a call
costs a few ms to set up.

What is held back at the end of a chunk is the input since the last cut plus MARGIN: tens of ms
after a clause (its trailing silence has cuts), up to MAX_SEGMENT inside continuous speech. The
voice streams faster than it plays, so the listener does not wait on it. Rubber Band is GPL, as is
Piper, which the app already ships.
"""

from __future__ import annotations

import functools
from typing import Iterator

import numpy as np
import pedalboard

from core.style.presets import PITCH_RANGE, SPEED_RANGE

ENGINE = "Rubber Band R3, real-time, short window, formants kept (pedalboard), per quiet-cut segment"
RATE_RANGE = (8000, 192000)  # what Rubber Band takes
FRAME_S = 0.01  # the grid the quiet gaps are found on, from the start of the reply
QUIET_DB = -40.0  # a frame this far under the loudest frame so far is quiet...
FLOOR = 1e-4  # ...and always one under -80 dBFS (the silence before the first word)
QUIET_FRAMES = 3  # a cut needs this many quiet frames around it: 30 ms
MIN_SEGMENT_S = 0.25  # speech between cuts: a stretcher call costs a few ms to set up
LONG_QUIET_FRAMES = 6  # after 60 ms of quiet a cut may come sooner: little is held after a clause
QUIET_SEGMENT_S = 0.03  # ...every 30 ms
MAX_SEGMENT_S = 1.2  # speech without a gap is cut at its quietest frame edge by then...
FIRST_SEGMENT_S = 0.4  # ...or by this, after a silence: the first sound of a phrase waits on one call
MARGIN_S = 0.03  # real input each side of a segment, so its edges are stretched in context
FADE_S = 0.005  # cross-fade at a join, centred on the cut
PIECE_S = 0.125  # input per part handed on by `pieces`
_EMPTY = np.zeros(0, np.float32)


def check_prosody(rate: int, speed: float, semitones: float) -> None:
    """Refuses settings outside what the user can choose, with a message that says which."""
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise ValueError(f"speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}, got {speed}")
    if not PITCH_RANGE[0] <= semitones <= PITCH_RANGE[1]:
        raise ValueError(
            f"pitch must be between {PITCH_RANGE[0]:+g} and {PITCH_RANGE[1]:+g} semitones, got {semitones}"
        )
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise ValueError(f"sample rate must be between {RATE_RANGE[0]} and {RATE_RANGE[1]} Hz, got {rate}")


def _stretch(x: np.ndarray, rate: int, speed: float, semitones: float) -> np.ndarray:
    """One Rubber Band call over `x`, with the stretcher's own delay still in front.

    Arrays of the (constant) speed and pitch select Rubber Band's real-time mode, the engine the
    styling was measured with; in pedalboard's offline mode a pitch change costs ~0.2 s of CPU per
    call to set up, too much for a call per segment."""
    n = len(x)
    return pedalboard.time_stretch(
        x,
        rate,
        stretch_factor=np.full(n, speed),
        pitch_shift_in_semitones=np.full(n, semitones),
        high_quality=True,  # R3 ("finer")
        use_long_fft_window=False,  # the short window
        preserve_formants=True,
    )[0]


@functools.lru_cache(maxsize=64)
def _delay(rate: int, speed: float, semitones: float, pad: int) -> int:
    """Output samples before input sample 0 when `pad` zeros go first (the stretcher's latency,
    which pedalboard does not report): found once per setting from noise whose loudness comes and
    goes, by matching the output's loudness curve to the input's. Within a few ms: a constant
    offset of the whole reply, well inside the 30 ms quiet runs the joins are placed in."""
    n = rate // 2
    t = np.arange(n) / rate
    envelope = np.clip(np.sin(2 * np.pi * 7 * t) * np.sin(2 * np.pi * 3.1 * t + 1), 0, None) ** 2
    noise = np.random.default_rng(0).standard_normal(n) * envelope * 0.3
    out = _stretch(np.concatenate([np.zeros(pad), noise]).astype(np.float32), rate, speed, semitones)
    expected = np.interp(np.arange(round(n / speed)) * speed, np.arange(n), envelope)
    window = np.hanning(rate // 200)
    power = np.convolve(out.astype(np.float64) ** 2, window / window.sum(), "same")
    size = len(power) + len(expected)
    spectrum = np.fft.rfft(power, size) * np.conj(np.fft.rfft(expected, size))
    lags = np.fft.irfft(spectrum, size)[: len(power) - len(expected) + 1]  # the "valid" correlation
    return int(np.argmax(lags))


class StreamingProsody:
    """Speed (pitch kept) and pitch (duration kept) of one voice stream, chunk by chunk.

    `process` returns the styled audio for as much of the input as could be finished; `flush` at
    the end of a reply returns the rest and readies the stream for the next reply; `reset` drops
    everything held (a barge-in). At speed 1 and 0 semitones samples pass untouched.
    """

    def __init__(self, rate: int, speed: float = 1.0, semitones: float = 0.0) -> None:
        check_prosody(rate, speed, semitones)
        self.rate, self.speed, self.semitones = rate, float(speed), float(semitones)
        self.identity = self.speed == 1.0 and self.semitones == 0.0
        self._frame = max(1, round(FRAME_S * rate))
        self._margin = round(MARGIN_S * rate)
        self._half_fade = max(1, round(FADE_S * rate / 2))
        self._pad = round(0.06 * rate)  # zeros first, so the stretcher's window has filled
        self._lag = 0 if self.identity else _delay(rate, self.speed, self.semitones, self._pad)
        self.reset()

    def reset(self) -> None:
        self._input = _EMPTY  # the reply's input from sample `_base` on
        self._base = 0
        self._taken = 0  # input samples of this reply
        self._loud: list[float] = []  # each whole frame's RMS
        self._quiet: list[bool] = []
        self._loudest = 0.0
        self._cut = 0  # the last cut: input up to here is stretched
        self._ready: list[int] = []  # cuts found whose segment waits for its right margin
        self._after_silence = True  # the segment being found starts a phrase
        # `_tail`: output of the last segment past its cut's fade start, which the next segment
        # cross-fades into; `_next`: the reply's output position of the next sample out (the
        # first segment starts half a fade before the reply, and that part is not handed on).
        self._tail = _EMPTY
        self._next = -round(self._half_fade / self.speed)
        self._given = 0  # output samples handed on
        self.joins: list[int] = []  # output positions of this reply's cuts (for the benchmark)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32)
        if self.identity:
            return chunk
        if self._taken == 0:
            self.joins = []
        self._input = np.concatenate([self._input, chunk])
        self._taken += len(chunk)
        self._find_cuts()
        pieces = []
        while self._ready and self._ready[0] + self._half_fade + self._margin <= self._taken:
            pieces.append(self._segment(self._ready.pop(0)))
        return self._emit(pieces)

    def pieces(self, chunk: np.ndarray) -> Iterator[np.ndarray]:
        """`process(chunk)` handed on in parts of PIECE_S of input, each as soon as it is ready:
        the first sound of a clause waits for its first part only. The same samples as `process`
        (the cuts depend on the samples, not on how they are handed in)."""
        step = max(self._frame, int(PIECE_S * self.rate))
        for start in range(0, len(chunk), step):
            out = self.process(chunk[start : start + step])
            if len(out):
                yield out

    def flush(self) -> np.ndarray:
        """The rest of the reply; afterwards the stream is ready for the next one."""
        if self.identity:
            return _EMPTY
        end = self._taken
        if end % self._frame:  # the last, partial frame: quiet or not by the same rule
            self._judge(self._input[len(self._input) - end % self._frame :])
        pieces = [self._segment(cut) for cut in self._ready]
        self._ready = []
        pieces.append(self._segment(end, final=True) if end > self._cut else self._tail)
        tail = self._emit(pieces)
        # Exactly input / speed, as a whole-buffer stretch would give.
        excess = self._given - round(self._taken / self.speed)
        tail = tail[: max(0, len(tail) - excess)] if excess > 0 else np.pad(tail, (0, -excess))
        joins = self.joins
        self.reset()
        self.joins = joins
        return tail

    def _find_cuts(self) -> None:
        """Frames completed since the last call: their loudness, and the cuts they allow."""
        f, frame = len(self._loud), self._frame
        while (f + 1) * frame <= self._taken:
            self._judge(self._input[f * frame - self._base : (f + 1) * frame - self._base])
            f += 1
            self._consider(f)

    def _judge(self, samples: np.ndarray) -> None:
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        self._loudest = max(self._loudest, rms)
        self._loud.append(rms)
        self._quiet.append(rms < max(FLOOR, self._loudest * 10 ** (QUIET_DB / 20)))

    def _consider(self, frames: int) -> None:
        """A cut in the middle of the last QUIET_FRAMES frames if they are quiet and the segment is
        long enough (shorter in a long silence); a forced cut at the quietest frame edge once speech
        runs MAX_SEGMENT without a gap."""
        frame, last = self._frame, self._ready[-1] if self._ready else self._cut
        cut = (frames - QUIET_FRAMES) * frame + QUIET_FRAMES * frame // 2
        if frames >= QUIET_FRAMES and all(self._quiet[-QUIET_FRAMES:]):
            silence = frames >= LONG_QUIET_FRAMES and all(self._quiet[-LONG_QUIET_FRAMES:])
            if cut - last >= (QUIET_SEGMENT_S if silence else MIN_SEGMENT_S) * self.rate:
                self._ready.append(cut)
                self._after_silence = silence
                return
        longest = FIRST_SEGMENT_S if self._after_silence else MAX_SEGMENT_S
        if frames * frame - last >= longest * self.rate:
            first = -(-(last + round(MIN_SEGMENT_S * self.rate)) // frame)  # frame edges after the shortest
            edges = range(max(first, 1), frames)
            self._ready.append(min(edges, key=lambda e: self._loud[e - 1] + self._loud[e]) * frame)
            self._after_silence = False

    def _segment(self, end: int, final: bool = False) -> np.ndarray:
        """Stretches input from the last cut to `end`; returns what is final, keeps the rest of the
        fade into the next segment."""
        start, speed, half, margin = self._cut, self.speed, self._half_fade, self._margin
        lo, hi = start - half - margin, (end if final else end + half) + margin
        x = self._input_range(lo, hi)
        out_lo = round((start - half) / speed)
        out_hi = round(end / speed) if final else round((end + half) / speed)
        first, last = self._segment_frames(start, end)
        if all(self._quiet[first:last]):
            # Silence: resampled to its new length; no pitch to keep, no stretcher to set up.
            y = np.interp(np.arange(out_lo, out_hi) * speed - lo, np.arange(len(x)), x).astype(np.float32)
        else:
            stretched = _stretch(np.concatenate([np.zeros(self._pad, np.float32), x]), self.rate, speed, self.semitones)
            begin = self._lag + out_lo - round(lo / speed)
            y = stretched[begin : begin + out_hi - out_lo]
            y = np.pad(y, (0, out_hi - out_lo - len(y)))
        # Cross-fade the overlap with the previous segment's tail (raised cosine, equal gain: the
        # two sides are the same quiet sound, stretched by different calls).
        overlap = min(len(self._tail), len(y))
        ramp = np.sin(np.linspace(0, np.pi / 2, overlap + 2)[1:-1]).astype(np.float32) ** 2
        y[:overlap] = self._tail[:overlap] * (1 - ramp) + y[:overlap] * ramp
        keep = out_hi - round((end - half) / speed) if not final else 0
        done, self._tail = y[: len(y) - keep], y[len(y) - keep :]
        self._cut = end
        if not final:
            self.joins.append(round(end / speed))
        self._drop_input_before(end - half - margin)
        return done

    def _segment_frames(self, start: int, end: int) -> tuple[int, int]:
        return start // self._frame, -(-end // self._frame)

    def _input_range(self, lo: int, hi: int) -> np.ndarray:
        """Input samples lo..hi of the reply, zeros before its start and past what has come."""
        x = np.zeros(hi - lo, np.float32)
        a, b = max(lo, self._base), min(hi, self._base + len(self._input))
        if b > a:
            x[a - lo : b - lo] = self._input[a - self._base : b - self._base]
        return x

    def _drop_input_before(self, position: int) -> None:
        if position > self._base:
            self._input = self._input[position - self._base :]
            self._base = position

    def _emit(self, pieces: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(pieces) if pieces else _EMPTY
        skip = min(len(out), max(0, -self._next))  # before the reply's start
        self._next += len(out)
        out = out[skip:]
        self._given += len(out)
        return out


def apply_prosody(audio: np.ndarray, rate: int, speed: float = 1.0, semitones: float = 0.0) -> np.ndarray:
    """A whole utterance at this speed and pitch: the reference the streamed output is held to."""
    stream = StreamingProsody(rate, speed, semitones)
    return np.concatenate([stream.process(audio), stream.flush()])
