"""Shared by the Mini-Omni tests: a small random checkpoint in the exact file layout (2 layers,
width 64, the full 181120-entry vocabulary), and a check that it is what the tests assume."""

from pathlib import Path

from models.omni.config import OmniConfig
from models.omni.whisper_encoder import EncoderConfig
import pytest

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

TINY = OmniConfig(
    n_layer=2,
    n_embd=64,
    n_head=4,
    n_query_groups=2,
    head_size=16,
    intermediate_size=128,
    whisper_adapter_dim=32,
    block_size=128,
)
TINY_ENCODER = EncoderConfig(n_state=32, n_head=2, n_layer=1)
TINY_CODEC = dict(decoder_dim=64, encoder_dim=8)


def write_tiny(root: Path, seed: int = 0, dtype=None) -> dict[str, Path]:
    """dtype: the number format every file stores (default float32)."""
    import torch

    from models.omni.checkpoint import write_random_checkpoint

    return write_random_checkpoint(root, TINY, TINY_ENCODER, TINY_CODEC, seed, dtype or torch.float32)


def test_tiny_checkpoint_has_the_real_vocabulary_and_file_layout(tmp_path):
    folders = write_tiny(tmp_path)
    assert TINY.padded_vocab_size == 181120
    assert sorted(p.name for p in folders["lm"].iterdir()) == ["lit_model.pth", "model_config.yaml", "tokenizer.json"]
    assert sorted(p.name for p in folders["codec"].iterdir()) == ["config.json", "pytorch_model.bin"]
    assert [p.name for p in folders["encoder"].iterdir()] == ["small.pt"]
