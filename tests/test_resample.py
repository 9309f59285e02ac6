"""Streaming resampling equals resampling the whole signal; frames come out exactly sized."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from core.audio.resample import FrameSplitter, StreamResampler


def in_random_blocks(signal: np.ndarray, rng: np.random.Generator, largest: int = 2000) -> list[np.ndarray]:
    cuts = np.cumsum(rng.integers(1, largest, size=len(signal)))
    return np.split(signal, cuts[cuts < len(signal)])


@pytest.mark.parametrize("in_rate,out_rate", [(48000, 16000), (44100, 16000), (16000, 48000), (22050, 48000)])
def test_streaming_equals_whole_signal(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(in_rate + out_rate)
    t = np.arange(in_rate) / in_rate
    signal = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(in_rate)).astype(np.float32)
    resampler = StreamResampler(in_rate, out_rate)

    pieces = [resampler.process(block) for block in in_random_blocks(signal, rng)]
    streamed = np.concatenate(pieces + [resampler.flush()])

    whole = soxr.resample(signal, in_rate, out_rate, quality="HQ")
    assert len(streamed) == len(whole) == out_rate
    assert np.abs(streamed - whole).max() < 1e-4
    assert all(piece.dtype == np.float32 for piece in pieces)


def test_stream_restarts_after_flush() -> None:
    signal = np.random.default_rng(0).standard_normal(4800).astype(np.float32)
    resampler = StreamResampler(48000, 16000)
    first = np.concatenate([resampler.process(signal), resampler.flush()])
    second = np.concatenate([resampler.process(signal), resampler.flush()])
    np.testing.assert_array_equal(first, second)


def test_equal_rates_pass_through_untouched() -> None:
    signal = np.random.default_rng(1).standard_normal(1234).astype(np.float32)
    resampler = StreamResampler(16000, 16000)
    np.testing.assert_array_equal(resampler.process(signal), signal)
    assert len(resampler.flush()) == 0


def test_frame_splitter_cuts_exact_frames() -> None:
    rng = np.random.default_rng(2)
    signal = rng.standard_normal(16000).astype(np.float32)
    splitter = FrameSplitter(160)

    frames = [frame for block in in_random_blocks(signal, rng, largest=500) for frame in splitter.push(block)]

    assert all(len(frame) == 160 for frame in frames)
    assert len(frames) * 160 + splitter.pending == len(signal)
    np.testing.assert_array_equal(np.concatenate(frames), signal[: len(frames) * 160])


def test_frame_splitter_holds_a_short_block_back() -> None:
    splitter = FrameSplitter(160)
    assert splitter.push(np.ones(100, np.float32)) == []
    frames = splitter.push(np.full(100, 2.0, np.float32))
    assert len(frames) == 1 and splitter.pending == 40
    np.testing.assert_array_equal(frames[0], np.r_[np.ones(100), np.full(60, 2.0)])
