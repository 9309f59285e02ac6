"""Replace a file all at once or not at all.

Everything the registry writes goes to a temp file next to its final name and is renamed over it
only when complete and checked, so a crash, Ctrl-C or a failed check never leaves a partial or
wrong file under a name that a model loader would open.
"""

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_name(target: Path) -> Path:
    # Hidden and randomised: loaders never pick it up and two writers never share one.
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files left by a process that was killed outright (no handler ran)."""
    for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yield a temp path; on clean exit rename it over `target`, on any exception delete it.

    The caller writes (and fsyncs) the temp file inside the block, and raises there if the
    content is wrong. BaseException is caught on purpose: Ctrl-C must not leave the temp behind.
    """
    tmp = temp_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else's code (which may not have synced) to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_json(path: Path, data: object) -> None:
    with replacing(path) as tmp:
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable. Only POSIX can open a directory; NTFS journals renames.
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
