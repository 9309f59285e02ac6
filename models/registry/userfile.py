"""Reading a JSON file the app wrote for the user, whatever has happened to it since.

Settings, history, presets, voice profiles and the registry's own files (user_assets.json,
hub_pins.json) all load through `load_or_recover`. Any damage (bytes that are not UTF-8, JSON that
does not parse or is nested past the interpreter's limit, a file too large to be ours, values of
the wrong type or out of range) is one `DamagedFile`; the file is then moved aside as
`NAME.corrupt-TIME`, never overwritten, and the caller gets the default and one notice to show.

Code that cannot hand a notice to the user itself (the registry is read from many places) posts it
with `post_notice`; the window and the command line show what `take_notices` returns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BYTES = 1 << 20  # settings, presets, profiles and registry files are a few kB

# What decoding and checking a damaged file can raise: UnicodeDecodeError and JSONDecodeError are
# ValueErrors; RecursionError comes from JSON nested deeper than the interpreter's stack allows;
# the others from parse functions meeting a value of the wrong shape or size (int(inf) overflows).
DAMAGE = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OverflowError)

_notices: list[str] = []
_notices_lock = threading.Lock()


class DamagedFile(ValueError):
    """A file that exists and was read but is not what the app wrote; the message says why."""


def read_json(path: Path, max_bytes: int = MAX_BYTES) -> object:
    """The decoded JSON of `path`. FileNotFoundError when it is missing, OSError when it cannot be
    read, DamagedFile when it is too large, not UTF-8 or not JSON. The size is checked before the
    file is read, so a huge file costs nothing."""
    path = Path(path)
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size > max_bytes:
            raise DamagedFile(f"{path.name} is {size} bytes, more than the {max_bytes} this file can be")
        f.seek(0)
        raw = f.read(max_bytes + 1)
    try:
        return json.loads(raw.decode("utf-8"))
    except DAMAGE as exc:
        raise DamagedFile(f"{path.name} is not valid JSON ({_reason(exc)})") from exc


def parse_json(path: Path, parse: Callable[[object], T], max_bytes: int = MAX_BYTES) -> T:
    """`parse(read_json(path))`, with whatever `parse` raises on a bad value as DamagedFile."""
    data = read_json(path, max_bytes)
    try:
        return parse(data)
    except DAMAGE as exc:
        if isinstance(exc, DamagedFile):
            raise
        raise DamagedFile(f"{Path(path).name}: {_reason(exc)}") from exc


def keep_aside(path: Path) -> Path:
    """Rename a damaged file to `NAME.corrupt-TIME` beside it (never over an earlier one)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.replace(backup)
    return backup


def load_or_recover(
    path: Path, parse: Callable[[object], T], default: T, max_bytes: int = MAX_BYTES
) -> tuple[T, str | None]:
    """(value, notice): the parsed file, or `default` and a notice for the user when it could not
    be used. A missing file is the default without a notice. A damaged file is kept aside as
    `NAME.corrupt-TIME`; one that cannot be read at all (permissions, a folder in its place) is
    left where it is."""
    path = Path(path)
    try:
        return parse_json(path, parse, max_bytes), None
    except FileNotFoundError:
        return default, None
    except DamagedFile as exc:
        damage = exc
    except OSError as exc:
        log.warning("could not read %s; using defaults", path, exc_info=True)
        return default, f"could not read {path.name} ({exc.strerror or exc}); using defaults"
    try:
        backup = keep_aside(path)
    except OSError as exc:
        log.warning("%s is damaged (%s) and could not be moved aside", path, damage, exc_info=True)
        return default, (
            f"{path.name} is damaged ({damage}) and could not be moved aside ({exc.strerror or exc}); defaults are used"
        )
    log.warning("%s is damaged; kept as %s, using defaults", path, backup.name, exc_info=damage)
    return default, f"{path.name} was damaged ({damage}); it was kept as {backup.name} and defaults are used"


def post_notice(message: str) -> None:
    """Queue a notice for the user from code that has no way to show it itself."""
    with _notices_lock:
        _notices.append(message)


def take_notices() -> list[str]:
    """The notices posted so far, each handed out once."""
    with _notices_lock:
        taken = list(_notices)
        _notices.clear()
    return taken


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r}" if exc.args else "a field is missing"
    text = str(exc).strip("'\"") or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
