"""SHA-256 computed in the same pass that moves the bytes, so big files are read only once."""

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# Large enough that per-call overhead vanishes, small enough to keep memory flat and progress live.
CHUNK_BYTES = 1 << 20

OnBytes = Callable[[int], None]
"""Called with the running total of bytes processed so far."""


def hash_file(path: Path, on_bytes: OnBytes | None = None) -> str:
    digest = hashlib.sha256()
    for chunk, done in _chunks([path]):
        digest.update(chunk)
        if on_bytes:
            on_bytes(done)
    return digest.hexdigest()


def join_hashing(parts: Sequence[Path], dest: Path, on_bytes: OnBytes | None = None) -> str:
    """Write `parts` one after another into the new file `dest`, fsync it, return its SHA-256."""
    digest = hashlib.sha256()
    with open(dest, "xb") as out:
        for chunk, done in _chunks(parts):
            digest.update(chunk)
            out.write(chunk)
            if on_bytes:
                on_bytes(done)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _chunks(paths: Sequence[Path]) -> Iterator[tuple[memoryview, int]]:
    """Yield (chunk, running total) over the concatenation of `paths`.

    The chunk is a view into one reused buffer: consume it before asking for the next.
    """
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    done = 0
    for path in paths:
        with open(path, "rb") as f:
            while n := f.readinto(buffer):
                done += n
                yield view[:n], done
