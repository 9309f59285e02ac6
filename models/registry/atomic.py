"""Replace a file all at once or not at all.

Everything the registry writes goes to a temp file next to its final name and is renamed over it
only when complete and checked, so a crash, Ctrl-C or a failed check never leaves a partial or
wrong file under a name that a model loader would open.

What the app writes for the user is private: a new file is 0600, and a rewrite keeps the mode the
file had (a user's own `chmod` survives), because the rename would otherwise give the file the
temp file's mode.
"""

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def temp_name(target: Path) -> Path:
    # Hidden and randomised: loaders never pick it up and two writers never share one.
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files left by a process that was killed outright (no handler ran)."""
    for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def make_private_dir(folder: Path) -> Path:
    """Make `folder` and any missing parents, each new one 0700 (only the user may list or enter
    it). A folder that exists already keeps its mode."""
    missing, above = [], Path(folder)
    while not above.exists() and above != above.parent:
        missing.append(above)
        above = above.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, PRIVATE_DIR)
        except FileExistsError:  # made by another thread or process meanwhile
            continue
        os.chmod(new, PRIVATE_DIR)  # mkdir's mode passes through the umask; chmod does not
    return Path(folder)


def kept_mode(target: Path) -> int:
    """The permission bits a rewrite of `target` gets: the file's own, or 0600 for a new file."""
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        return PRIVATE_FILE


@contextmanager
def replacing(target: Path, private: bool = True) -> Iterator[Path]:
    """Yield a temp path; on clean exit rename it over `target`, on any exception delete it.

    The caller writes (and fsyncs) the temp file inside the block, and raises there if the
    content is wrong. BaseException is caught on purpose: Ctrl-C must not leave the temp behind.
    `private`: the file gets `kept_mode(target)` before the rename; False leaves the temp's mode
    alone (model files hard-linked from an installed package must not change that package's mode).
    """
    tmp = temp_name(target)
    try:
        yield tmp
        if private:
            os.chmod(tmp, kept_mode(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else's code (which may not have synced) to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)  # 0600 from the first byte, whatever the umask


def write_json(path: Path, data: object, private: bool = True) -> None:
    """`private`: a file of the user's data (0600); False for one written where the user asked
    (an export), which gets the mode the user's umask gives any new file."""
    with replacing(path, private=private) as tmp:
        with open(tmp, "x", encoding="utf-8", opener=_private_opener if private else None) as f:
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
