"""Streaming sample-rate conversion and cutting a stream into fixed-size frames.

Device callbacks deliver blocks of whatever size and rate the hardware likes; the core works on
16 kHz mono float32 in 10 ms frames. These two pieces bridge the gap without ever seeing the whole
signal, so they keep their state between blocks.
"""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """Mono float32 resampling, one block at a time.

    Concatenating every `process` output and the final `flush` gives the same samples as resampling
    the whole signal at once (soxr's streaming filter is the same filter).
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        # Equal rates skip soxr entirely: no filter delay, no rounding, samples pass untouched.
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block)

    def flush(self) -> np.ndarray:
        """The tail still inside the filter; the stream is ready for a fresh signal afterwards."""
        if self._stream is None:
            return np.zeros(0, np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        self._stream.clear()
        return tail


class FrameSplitter:
    """Accumulates blocks of any size and hands out frames of exactly `frame` samples."""

    def __init__(self, frame: int) -> None:
        if frame <= 0:
            raise ValueError(f"frame must be positive, got {frame}")
        self.frame = frame
        self._pending = np.zeros(0, np.float32)

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Every complete frame the new block finishes, oldest first; the remainder waits."""
        buf = np.concatenate([self._pending, np.asarray(block, dtype=np.float32)])
        count = len(buf) // self.frame
        frames = [buf[i * self.frame : (i + 1) * self.frame] for i in range(count)]
        self._pending = buf[count * self.frame :].copy()
        return frames

    @property
    def pending(self) -> int:
        """Samples waiting for the rest of their frame."""
        return len(self._pending)
