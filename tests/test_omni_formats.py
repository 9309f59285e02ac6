"""The published files' number formats: whisper's released small.pt stores float16, re-uploads of
the other files come in float16 or bfloat16. Each loads, is cast to what its device computes in,
and a whole turn runs from them on this CPU."""

import numpy as np
import pytest
import torch

from models.engine import CancelToken, ReplyAudio, ReplyDone, Style, UserTurn
from models.omni.checkpoint import load_codec, load_encoder, load_lm
from test_omni_support import write_tiny

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

HALVES = [torch.float16, torch.bfloat16]


@pytest.fixture(scope="module", params=HALVES, ids=["float16", "bfloat16"])
def half(request, tmp_path_factory):
    """(dtype, the files in that format, the same weights written in float32)."""
    root = tmp_path_factory.mktemp("formats")
    return request.param, write_tiny(root / "half", seed=8, dtype=request.param), write_tiny(root / "f32", seed=8)


def _voice(seconds=1.5):
    return (0.1 * np.sin(np.arange(int(16000 * seconds)) * 0.07)).astype(np.float32)


def _relative(a, b) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def test_the_files_store_the_half_format(half):
    dtype, files, _ = half
    saved = torch.load(files["encoder"] / "small.pt", weights_only=True)
    assert {"dims", "model_state_dict"} <= set(saved)
    assert any(k.startswith("decoder.") for k in saved["model_state_dict"])  # whisper's whole model
    assert {t.dtype for t in saved["model_state_dict"].values()} == {dtype}
    assert {t.dtype for t in torch.load(files["lm"] / "lit_model.pth", weights_only=True).values()} == {dtype}
    assert {t.dtype for t in torch.load(files["codec"] / "pytorch_model.bin", weights_only=True).values()} == {dtype}


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("pad_to_30s", [False, True])
def test_a_half_encoder_runs_on_the_cpu(half, fast, pad_to_30s):
    """The released small.pt's format: the CPU computes float32 (bfloat16 only inside autocast),
    so the weights are cast on load; features match the float32 file's up to its rounding."""
    dtype, files, f32 = half
    encoder = load_encoder(files["encoder"] / "small.pt")
    assert encoder.conv1.weight.dtype == torch.float32
    assert encoder.positional_embedding.dtype == torch.float32
    features = encoder.encode(_voice(), 76, pad_to_30s, fast=fast)
    assert features.shape == (1, 76, 32) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    reference = load_encoder(f32["encoder"] / "small.pt").encode(_voice(), 76, pad_to_30s, fast=False)
    assert _relative(features, reference) < 3e-2


def test_a_half_language_model_and_codec_load_in_float32_on_the_cpu(half):
    dtype, files, f32 = half
    lm = load_lm(files["lm"])
    assert {p.dtype for p in lm.parameters()} == {torch.float32}
    x = torch.randn(1, 5, lm.config.n_embd)
    with torch.inference_mode():
        found, wanted = lm(x), load_lm(f32["lm"])(x)
    assert _relative(found, wanted) < 3e-2
    codec = load_codec(files["codec"])
    assert {p.dtype for p in codec.parameters()} == {torch.float32}


@pytest.mark.parametrize("backend", ["torch", "llama"])
def test_a_whole_turn_from_half_files_answers_on_the_cpu(half, backend, tmp_path):
    from models.omni.convert import convert
    from models.omni.engine import OmniPaths, load_engine

    dtype, files, _ = half
    converted = convert(load_lm(files["lm"]), tmp_path / "q8_0", "q8_0") if backend == "llama" else None
    paths = OmniPaths(files["lm"], files["encoder"] / "small.pt", files["codec"], converted)
    engine = load_engine(paths, backend=backend)
    events = list(engine.respond(UserTurn(audio=_voice()), Style(), CancelToken()))
    assert events[-1] == ReplyDone("complete")
    audio = np.concatenate([e.samples for e in events if isinstance(e, ReplyAudio)])
    assert len(audio) > 2048 and np.isfinite(audio).all() and np.abs(audio).max() > 0
