"""A lock-free ring buffer of float32 mono samples between one producer and one consumer.

It sits between a device callback and the audio worker, so neither side may ever wait for the
other: the producer writes what fits, the consumer takes what is there.

Why no lock is needed (CPython, one producer thread and one consumer thread):
- Each side owns one counter and only ever assigns its own: the producer `_written`, the consumer
  `_read`. Both only grow, so `_written - _read` is what is queued and never needs a wrap flag.
- A counter is a Python int rebound in a single bytecode, so the other side reads either the old or
  the new value, never a torn one.
- The producer publishes `_written` only after its copy into the array has returned, and the
  consumer advances `_read` only after its copy out has returned. Threads hand over through the GIL,
  a mutex, and taking or releasing a mutex orders memory; so whoever sees the new counter also sees
  the samples behind it (or knows that slot is free to overwrite). This holds even when numpy drops
  the GIL inside a large copy, because the counter is stored after the copy, in program order.
A free-threaded (no-GIL) build gives no such ordering guarantee; there this class would need locks.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._samples = np.zeros(capacity, np.float32)
        self._written = 0  # samples ever written; assigned by the producer only
        self._read = 0  # samples ever consumed or dropped; assigned by the consumer only
        self.overruns = 0  # writes that did not fit whole; producer only
        self.underruns = 0  # reads that came up short while `expecting`; consumer only
        # Whether the consumer should find data: a short read then is a gap, not just an idle stream.
        # Set by whichever single side knows (for playback, the producer).
        self.expecting = False

    @property
    def total_written(self) -> int:
        return self._written

    @property
    def total_read(self) -> int:
        return self._read

    @property
    def available(self) -> int:
        """Samples queued for the consumer."""
        return self._written - self._read

    @property
    def free(self) -> int:
        """Room left for the producer."""
        return self.capacity - (self._written - self._read)

    def write(self, samples: np.ndarray) -> int:
        """Producer: queue as much of `samples` as fits; returns how many were queued."""
        n = min(len(samples), self.free)
        if n < len(samples):
            self.overruns += 1
        if n:
            start = self._written % self.capacity
            first = min(n, self.capacity - start)
            self._samples[start : start + first] = samples[:first]
            self._samples[: n - first] = samples[first:n]
        self._written += n  # publish only after the copy: see the module notes
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Consumer: fill `out` from the queue, silence for what is missing; returns samples really read."""
        n = min(len(out), self.available)
        if n < len(out):
            out[n:] = 0.0
            if self.expecting:
                self.underruns += 1
        if n:
            start = self._read % self.capacity
            first = min(n, self.capacity - start)
            out[:first] = self._samples[start : start + first]
            out[first:n] = self._samples[: n - first]
        self._read += n  # release the slots only after the copy: see the module notes
        return n

    def clear(self, upto: int | None = None) -> None:
        """Consumer: drop queued samples up to stream position `upto` (a `total_written` value the
        producer took when it asked for the drop), or everything written so far.

        The position is how a producer asks for a flush without touching `_read`: it notes where
        its stream stood, and the consumer drops up to there, keeping anything written after."""
        target = self._written if upto is None else min(upto, self._written)
        if target > self._read:
            self._read = target
