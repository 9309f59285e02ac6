"""Reading user audio: refused from the header beyond the limits, decoded block by block within them,
so memory follows the 16 kHz result and never the file's size."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from core.audio.format import RATE
from core.audio.io import MAX_CHANNELS, MAX_RATE, MAX_SECONDS, MIN_RATE, AudioInputError, _decode_mono, load_voice

ROOT = Path(__file__).resolve().parent.parent


def sparse_wav(path: Path, rate: int, channels: int, seconds: float) -> Path:
    """A 16-bit PCM WAV of silence whose samples are a hole in the file: a file of any length costs
    no disk and no time to make, and reads back as zeros through the whole decoder."""
    frames = int(rate * seconds)
    data = frames * channels * 2
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + data)
    return path


@pytest.mark.parametrize(
    "rate, channels, seconds, reason",
    [
        (MAX_RATE * 2, 1, 1.0, "sample rate"),
        (MIN_RATE // 2, 1, 1.0, "sample rate"),
        (RATE, MAX_CHANNELS * 2, 1.0, "channels"),
        (MAX_RATE, MAX_CHANNELS, MAX_SECONDS + 60, "longer than"),
    ],
)
def test_a_file_beyond_the_limits_is_refused_before_its_samples_are_read(tmp_path, rate, channels, seconds, reason):
    path = sparse_wav(tmp_path / "big.wav", rate, channels, seconds)
    tracemalloc.start()
    try:
        with pytest.raises(AudioInputError, match=reason) as err:
            load_voice(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(err.value)
    assert peak < 1 << 20, f"{peak} bytes allocated to refuse a header"


def test_a_length_the_header_does_not_tell_is_refused_while_decoding(tmp_path):
    path = tmp_path / "two-seconds.wav"
    soundfile.write(path, np.zeros(2 * RATE, np.float32), RATE)
    with pytest.raises(AudioInputError, match="longer than"):
        _decode_mono(path, RATE, max_frames=RATE)


def test_block_decoding_matches_decoding_the_whole_file(tmp_path):
    rng = np.random.default_rng(3)
    stereo = (0.1 * rng.standard_normal((44100 * 3, 2))).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 44100, subtype="FLOAT")
    whole = soxr.resample(stereo.mean(axis=1), 44100, RATE, quality="HQ")
    got = load_voice(path)
    assert got.dtype == np.float32 and abs(len(got) - len(whole)) <= 1
    n = min(len(got), len(whole))
    assert np.abs(got[:n] - whole[:n]).max() < 1e-3


@pytest.mark.slow  # decodes 1.8 GB of samples
def test_peak_memory_for_the_largest_accepted_input_stays_under_300_mb(tmp_path):
    """Ten minutes at the highest rate and channel count accepted (1.8 GB of 16-bit samples),
    read in a fresh process: its peak resident memory, imports included, and what Python
    allocated while reading."""
    path = sparse_wav(tmp_path / "largest.wav", MAX_RATE, MAX_CHANNELS, MAX_SECONDS)
    # VmHWM, the process's own peak resident size (getrusage's ru_maxrss would carry over the
    # pytest process's peak, which the kernel keeps across fork and exec).
    code = f"""
import json, tracemalloc
from core.audio.io import load_voice

def peak_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

before = peak_mb()
tracemalloc.start()
audio = load_voice({str(path)!r})
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({{"samples": len(audio), "peak_rss_mb": peak_mb(), "rss_before_mb": before,
                  "traced_peak_mb": traced / 2**20}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    print(figures)
    assert abs(figures["samples"] - MAX_SECONDS * RATE) <= RATE // 100
    assert figures["peak_rss_mb"] < 300, figures
    assert figures["traced_peak_mb"] < 120, figures  # the 38 MB result, its blocks, one concatenation
