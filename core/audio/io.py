"""Reading user audio files into the 16 kHz mono float32 the core works in.

A file is refused from its header before any sample is decoded when its rate, channel count or
length is beyond what a spoken turn can be, and accepted ones are decoded one block at a time,
each block mixed to mono and resampled as it comes: memory grows with the 16 kHz mono result
only (38 MB for ten minutes), never with the file's own size (a 10-minute 8-channel 192 kHz file
would be 3.7 GB of float32 samples decoded at once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from models.registry.atomic import fsync_file, replacing
from core.audio.format import RATE

MAX_SECONDS = 600
MIN_RATE = 8000  # below this speech is not intelligible enough to recognise
MAX_RATE = 192_000
MAX_CHANNELS = 8
BLOCK_SECONDS = 1.0  # decoded at a time: at most MAX_RATE x MAX_CHANNELS x 4 bytes = 6 MB


class AudioInputError(ValueError):
    """A file that cannot be used as a spoken turn; the message is one line for the user."""


def load_voice(path: Path, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Any WAV/FLAC/OGG within the limits above -> 16 kHz mono float32."""
    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if path.is_dir():
        raise AudioInputError(f"{path}: is a folder, not an audio file")
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile's reason stays chained for the log
        raise AudioInputError(f"{path}: not a readable audio file (WAV, FLAC or OGG expected)") from exc
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioInputError(f"{path}: a sample rate of {info.samplerate} Hz is outside {MIN_RATE} to {MAX_RATE} Hz")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioInputError(f"{path}: {info.channels} channels; at most {MAX_CHANNELS} are read")
    if info.frames <= 0:
        raise AudioInputError(f"{path}: the audio is empty")
    max_frames = int(max_seconds * info.samplerate)
    if info.frames > max_frames:
        raise AudioInputError(_too_long(path, info.frames / info.samplerate, max_seconds))
    try:
        mono = _decode_mono(path, info.samplerate, max_frames)
    except AudioInputError:
        raise
    except Exception as exc:
        raise AudioInputError(f"{path}: could not decode the audio ({exc})") from exc
    if mono.size == 0:
        raise AudioInputError(f"{path}: the audio is empty")
    return mono


def _decode_mono(path: Path, rate: int, max_frames: int) -> np.ndarray:
    """Decode block by block, mixing each to mono and resampling it to 16 kHz as it comes. The
    header's length is not trusted: decoding stops with a refusal past `max_frames`."""
    block = max(1, int(BLOCK_SECONDS * rate))
    resampler = None if rate == RATE else soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="HQ")
    pieces, frames = [], 0
    with soundfile.SoundFile(str(path)) as f:
        for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
            frames += len(data)
            if frames > max_frames:
                raise AudioInputError(_too_long(path, frames / rate, max_frames / rate))
            mono = data.mean(axis=1, dtype=np.float32)
            if not np.isfinite(mono).all():
                raise AudioInputError(f"{path}: the audio holds invalid samples")
            pieces.append(mono if resampler is None else resampler.resample_chunk(mono))
    if resampler is not None:
        pieces.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.ascontiguousarray(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), dtype=np.float32)


def _too_long(path: Path, seconds: float, max_seconds: float) -> str:
    limit = f"{max_seconds / 60:.0f}-minute" if max_seconds >= 60 else f"{max_seconds:.0f}-second"
    return f"{path}: {seconds:.0f} s is longer than the {limit} limit"


def save_wav(path: Path, samples: np.ndarray, rate: int, private: bool = True) -> None:
    """Write 16-bit PCM through a temporary file so a crash never leaves half a file; OSError when
    the disk refuses it. `private`: as models.registry.atomic.write_json."""
    with replacing(Path(path), private=private) as tmp:
        try:
            soundfile.write(str(tmp), np.clip(samples, -1, 1), rate, subtype="PCM_16", format="WAV")
        except soundfile.LibsndfileError as exc:  # a full or read-only disk, as libsndfile says it
            raise OSError(f"could not write {Path(path).name}: {exc.error_string}") from exc
        fsync_file(tmp)  # on disk before the rename: a crash leaves the old file or the whole new one
