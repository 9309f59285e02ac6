"""A cache of file hashes keyed by (size, mtime), so a start-up check need not re-read 500 MB.

Each asset folder keeps one stamp file. An entry says "when the file had this size and
modification time, its SHA-256 was this"; any write to the file changes its mtime and so
invalidates the entry. Losing or garbling the stamp only costs a re-hash.
"""

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import write_json
from .userfile import DamagedFile, parse_json

log = logging.getLogger(__name__)

STAMP_FILE = ".stamp.json"
_SCHEMA = 1


@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int
    sha256: str

    def describes(self, stat: os.stat_result) -> bool:
        return self.size == stat.st_size and self.mtime_ns == stat.st_mtime_ns


def read_stamps(folder: Path) -> dict[str, FileStamp]:
    try:
        return parse_json(folder / STAMP_FILE, _parse_stamps)
    except FileNotFoundError:  # nothing checked in this folder yet
        return {}
    except (OSError, DamagedFile):
        log.warning("%s is unreadable; every file will be hashed again", folder / STAMP_FILE, exc_info=True)
        return {}


def _parse_stamps(content: object) -> dict[str, FileStamp]:
    if not isinstance(content, dict):
        raise ValueError("not a JSON object")
    if content.get("schema") != _SCHEMA:
        return {}
    return {name: FileStamp(**entry) for name, entry in content["files"].items()}


def write_stamps(folder: Path, stamps: dict[str, FileStamp]) -> None:
    write_json(
        folder / STAMP_FILE,
        {"schema": _SCHEMA, "files": {name: asdict(s) for name, s in stamps.items()}},
    )
