"""Reading user audio files into the 16 kHz mono float32 the core works in."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from models.registry.atomic import replacing

RATE = 16000
MAX_SECONDS = 600


class AudioInputError(ValueError):
    """A file that cannot be used as a spoken turn; the message is one line for the user."""


def load_voice(path: Path, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Any WAV/FLAC/OGG, any rate or channel count -> 16 kHz mono float32."""
    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if path.is_dir():
        raise AudioInputError(f"{path}: is a folder, not an audio file")
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile's reason stays chained for the log
        raise AudioInputError(f"{path}: not a readable audio file (WAV, FLAC or OGG expected)") from exc
    if info.frames <= 0:
        raise AudioInputError(f"{path}: the audio is empty")
    if info.frames / info.samplerate > max_seconds:
        raise AudioInputError(
            f"{path}: {info.frames / info.samplerate:.0f} s is longer than the {max_seconds / 60:.0f}-minute limit"
        )
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioInputError(f"{path}: could not decode the audio ({exc})") from exc
    mono = data.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE, quality="HQ").astype(np.float32)
    if not np.isfinite(mono).all():
        raise AudioInputError(f"{path}: the audio holds invalid samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


def save_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write 16-bit PCM through a temporary file so a crash never leaves half a file."""
    with replacing(Path(path)) as tmp:
        soundfile.write(str(tmp), np.clip(samples, -1, 1), rate, subtype="PCM_16", format="WAV")
