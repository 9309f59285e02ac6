"""Streaming SNAC decode: chunks as frames arrive that join into the whole-utterance decode."""

import numpy as np
import pytest
import torch
from snac import SNAC

from models.omni.checkpoint import SNAC_24KHZ
from models.omni.codec import SAMPLES_PER_FRAME, SeededCodec, StreamingDecoder, positional_noise

# Streamed audio equals the offline decode within this fraction of the peak (measured ~2e-4 with
# 3 frames of left and 2 of right context; the crossfade spans 256 samples).
TOLERANCE = 2e-3

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return SeededCodec(SNAC(**{**SNAC_24KHZ, "decoder_dim": 64, "encoder_dim": 8}).eval(), seed=5)


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(1).integers(0, 4096, (23, 7))


def _stream(codec, frames, **kw):
    decoder = StreamingDecoder(codec, **kw)
    chunks = [decoder.push(f) for f in frames]
    return chunks, decoder.flush()


def test_seeded_decode_is_repeatable_and_noisy(codec, frames):
    a, b = codec.decode(frames), codec.decode(frames)
    assert np.array_equal(a, b)
    assert len(a) == len(frames) * SAMPLES_PER_FRAME
    # The noise is there (not switched off): another seed gives another waveform.
    torch.manual_seed(0)
    same_weights = SNAC(**{**SNAC_24KHZ, "decoder_dim": 64, "encoder_dim": 8}).eval()
    assert np.array_equal(SeededCodec(same_weights, seed=5).decode(frames), a)
    assert not np.allclose(SeededCodec(same_weights, seed=6).decode(frames), a)


def test_noise_depends_on_position_only():
    whole = positional_noise(1, 2, 0, 10000)
    assert torch.equal(positional_noise(1, 2, 3000, 5000), whole[3000:8000])
    assert not torch.equal(positional_noise(1, 3, 0, 100), whole[:100])


def test_streamed_equals_whole_decode(codec, frames):
    whole = codec.decode(frames)
    chunks, tail = _stream(codec, frames)
    streamed = np.concatenate(chunks + [tail])
    assert len(streamed) == len(whole)  # no frame lost at the end
    assert np.abs(streamed - whole).max() <= TOLERANCE * np.abs(whole).max()


def test_first_chunk_as_early_as_the_context_allows(codec, frames):
    chunks, _ = _stream(codec, frames, first=1, chunk=8, right=2)
    sizes = [len(c) for c in chunks]
    # Frame 0 can go once frames 1-2 (right context) exist: on the third push, minus the held fade.
    assert sizes[:2] == [0, 0] and sizes[2] == SAMPLES_PER_FRAME - 256
    # Then chunks of 2, 4, 8 frames (the fade moves 256 samples from one chunk to the next).
    out = [s for s in sizes[3:] if s]
    assert out == [2 * SAMPLES_PER_FRAME, 4 * SAMPLES_PER_FRAME, 8 * SAMPLES_PER_FRAME]
    assert sizes[4] == 2 * SAMPLES_PER_FRAME  # frames 1-2 go as soon as frame 4 is there


def test_without_context_the_seams_show(codec, frames):
    # The check above is not vacuous: the original's way (no context) is far off.
    whole = codec.decode(frames)
    chunks, tail = _stream(codec, frames, left=0, right=0, fade=0)
    streamed = np.concatenate(chunks + [tail])
    assert np.abs(streamed - whole).max() > 10 * TOLERANCE * np.abs(whole).max()


def test_short_utterance_and_reuse(codec):
    one = np.random.default_rng(2).integers(0, 4096, (1, 7))
    decoder = StreamingDecoder(codec)
    assert len(decoder.push(one[0])) == 0
    out = decoder.flush()
    assert np.allclose(out, codec.decode(one), atol=1e-6)
    assert len(decoder.flush()) == 0  # flushed decoder starts over empty


def test_the_faster_decoder_is_the_same_arithmetic(frames):
    """Weight norm folded, Snake and depthwise convolutions by time blocks: SNAC's own decode to
    float rounding (several time blocks per tensor here)."""
    from torch.nn.utils import parametrize

    small = {**SNAC_24KHZ, "decoder_dim": 64, "encoder_dim": 8}
    torch.manual_seed(3)
    plain = SeededCodec(SNAC(**small).eval(), seed=5, faster=False)
    torch.manual_seed(3)
    faster = SeededCodec(SNAC(**small).eval(), seed=5)
    assert any(parametrize.is_parametrized(m) for m in plain.snac.decoder.modules())
    assert not any(parametrize.is_parametrized(m) for m in faster.snac.decoder.modules())
    want, got = plain.decode(frames, 4), faster.decode(frames, 4)
    assert len(got) == len(want) and np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
