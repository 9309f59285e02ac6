"""Loading the real Mini-Omni files, each checked against the layout this engine expects, and
writing small random checkpoints in exactly that layout (for tests and the benchmark).

Folders, as installed by the registry:
  LLM      lit_model.pth (litgpt state dict), model_config.yaml, tokenizer.json
  encoder  small.pt (openai-whisper checkpoint: {"dims": ..., "model_state_dict": ...})
  codec    config.json + pytorch_model.bin (SNAC, as on the Hugging Face hub)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from models.omni.config import CheckpointError, OmniConfig, config_yaml, read_config
from models.omni.model import OmniLM
from models.omni.whisper_encoder import EncoderConfig, WhisperEncoder
from models.registry.atomic import replacing, write_json

LM_WEIGHTS, LM_CONFIG, TOKENIZER = "lit_model.pth", "model_config.yaml", "tokenizer.json"
ENCODER_WEIGHTS = "small.pt"
CODEC_CONFIG, CODEC_WEIGHTS = "config.json", "pytorch_model.bin"
SNAC_24KHZ = dict(
    sampling_rate=24000,
    encoder_dim=48,
    encoder_rates=[2, 4, 8, 8],
    decoder_dim=1024,
    decoder_rates=[8, 8, 4, 2],
    attn_window_size=None,
    codebook_size=4096,
    codebook_dim=8,
    vq_strides=[4, 2, 1],
    noise=True,
    depthwise=True,
)


# ---- loading ------------------------------------------------------------------------------


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        # weights_only: a checkpoint is data, never code; mmap: 2.8 GB are paged in as used.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # pickle, zip and torch errors of many kinds: one line for the user
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({error})") from error


def check_state(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: Path) -> None:
    """Raise one line naming what is missing, unexpected or the wrong shape."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [
        f"{k} {tuple(found[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in found and found[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(f"{where}: not the expected layout ({'; '.join(problems)})")


def load_lm(folder: Path) -> OmniLM:
    folder = Path(folder)
    config = read_config(folder / LM_CONFIG)
    state = _load_state(folder / LM_WEIGHTS)
    if not isinstance(state, dict):
        raise CheckpointError(f"{folder / LM_WEIGHTS}: expected a state dict")
    if isinstance(state.get("model"), dict):  # litgpt training checkpoints nest the weights
        state = state["model"]
    state = dict(state)
    with torch.device("meta"):
        expected = OmniLM(config).state_dict()
    if config.tie_word_embeddings:
        # The official code ties the head to the input table, so a stored lm_head (if any)
        # is never used; keep that behaviour.
        state.pop("lm_head.weight", None)
        expected.pop("lm_head.weight")
    check_state(state, expected, folder / LM_WEIGHTS)
    with torch.device("meta"):  # weights come from the file: allocating them first is waste
        model = OmniLM(config)
    model.load_state_dict(state, strict=not config.tie_word_embeddings, assign=True)
    # The torch model is the float32 reference and the source of every conversion, whatever the
    # file stores (float16 and bfloat16 re-uploads exist; numpy, which holds the table, has no bfloat16).
    model.float()
    if config.tie_word_embeddings:
        model.lm_head.weight = model.transformer["wte"].weight
    return model.eval().requires_grad_(False)


def load_encoder(path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> WhisperEncoder:
    """The encoder of an openai-whisper checkpoint, its weights cast to `dtype` on `device`: the
    released small.pt stores float16, which a CPU does not compute in (float32 there, see
    models.devices)."""
    path = Path(path)
    checkpoint = _load_state(path)
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint or "dims" not in checkpoint:
        raise CheckpointError(f"{path}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')")
    dims = checkpoint["dims"]
    try:
        config = EncoderConfig(
            n_mels=dims["n_mels"],
            n_ctx=dims["n_audio_ctx"],
            n_state=dims["n_audio_state"],
            n_head=dims["n_audio_head"],
            n_layer=dims["n_audio_layer"],
        )
    except KeyError as error:
        raise CheckpointError(f"{path}: dims lacks {error}") from error
    state = {
        k.removeprefix("encoder."): v for k, v in checkpoint["model_state_dict"].items() if k.startswith("encoder.")
    }
    with torch.device("meta"):
        expected = WhisperEncoder(config).state_dict()
    check_state(state, expected, path)
    with torch.device("meta"):
        encoder = WhisperEncoder(config)
    encoder.load_state_dict(state, assign=True)
    return encoder.to(device, dtype).eval().requires_grad_(False)


def load_codec(folder: Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """SNAC through its own package, built from the folder's config and weights (no download),
    in `dtype` on `device` whatever the file stores."""
    from snac import SNAC

    folder = Path(folder)
    try:
        config = json.loads((folder / CODEC_CONFIG).read_text(encoding="utf-8"))
        codec = SNAC(**config)
    except (OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"{folder / CODEC_CONFIG}: not a SNAC config ({error})") from error
    state = _load_state(folder / CODEC_WEIGHTS)
    check_state(state, codec.state_dict(), folder / CODEC_WEIGHTS)
    codec.load_state_dict(state)  # copies into the model's own float32 parameters
    return codec.to(device, dtype).eval().requires_grad_(False)


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust side raises a bare Exception
        raise CheckpointError(f"{path}: not a tokenizers JSON file ({error})") from error


# ---- writing random checkpoints -----------------------------------------------------------


def random_lm(config: OmniConfig, seed: int = 0) -> OmniLM:
    """Random weights of the right scale: the logits stay finite and varied through the layers."""
    torch.manual_seed(seed)
    model = OmniLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm_1.weight") or name.endswith("norm_2.weight") or "ln_f" in name:
                p.uniform_(0.8, 1.2)
            else:
                p.normal_(0.0, 0.02)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.transformer["wte"].weight
    return model.eval().requires_grad_(False)


def write_lm(folder: Path, model: OmniLM, dtype: torch.dtype = torch.float32) -> None:
    """dtype: the number format the file stores (the published file is float32; fine-tunes and
    re-uploads come in float16 or bfloat16)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    # The real file stores lm_head as a second copy of the table; so does this one.
    state["lm_head.weight"] = state["lm_head.weight"].clone()
    _save_torch(folder / LM_WEIGHTS, state)
    _write_text(folder / LM_CONFIG, config_yaml(model.config))
    _write_text(folder / TOKENIZER, small_tokenizer_json())


def write_encoder(
    path: Path, config: EncoderConfig, seed: int = 0, dtype: torch.dtype = torch.float32
) -> WhisperEncoder:
    """openai-whisper's checkpoint layout: `dims` and the whole model's state dict, the decoder's
    keys too (a stand-in pair of them). Its released files store float16: pass dtype to match."""
    torch.manual_seed(seed)
    encoder = WhisperEncoder(config).eval().requires_grad_(False)
    dims = {
        "n_mels": config.n_mels,
        "n_audio_ctx": config.n_ctx,
        "n_audio_state": config.n_state,
        "n_audio_head": config.n_head,
        "n_audio_layer": config.n_layer,
        "n_vocab": 51865,
        "n_text_ctx": 448,
        "n_text_state": config.n_state,
        "n_text_head": config.n_head,
        "n_text_layer": config.n_layer,
    }
    state = {f"encoder.{k}": v.to(dtype) for k, v in encoder.state_dict().items()}
    state |= {
        "decoder.ln.weight": torch.ones(config.n_state, dtype=dtype),
        "decoder.ln.bias": torch.zeros(config.n_state, dtype=dtype),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save_torch(Path(path), {"dims": dims, "model_state_dict": state})
    return encoder


def write_codec(folder: Path, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides) -> None:
    """A random SNAC (24 kHz layout unless `overrides` shrink it) in the hub's file layout."""
    from snac import SNAC

    config = {**SNAC_24KHZ, **overrides}
    torch.manual_seed(seed)
    codec = SNAC(**config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CODEC_CONFIG, config)
    _save_torch(folder / CODEC_WEIGHTS, {k: v.to(dtype) for k, v in codec.state_dict().items()})


def small_tokenizer_json() -> str:
    """A byte-level BPE tokenizer (a few hundred tokens, ids far below the specials) standing in
    for Qwen2's, so text round-trips through the same `tokenizers` calls."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    text = [
        "what is the weather like today",
        "tell me a story about a small robot",
        "hello there, how are you doing",
        "the quick brown fox jumps over the lazy dog",
    ]
    tokenizer.train_from_iterator(text, trainer)
    return tokenizer.to_str()


def _save_torch(path: Path, obj) -> None:
    with replacing(path) as tmp:
        torch.save(obj, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def _write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_random_checkpoint(
    root: Path,
    config: OmniConfig,
    encoder: EncoderConfig = EncoderConfig(),
    codec: dict | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Path]:
    """The three asset folders of a random Mini-Omni under `root`, every file storing `dtype`;
    returns {asset: folder}."""
    root = Path(root)
    folders = {"lm": root / "mini-omni", "encoder": root / "whisper-small", "codec": root / "snac-24khz"}
    write_lm(folders["lm"], random_lm(config, seed), dtype)
    write_encoder(folders["encoder"] / ENCODER_WEIGHTS, encoder, seed, dtype)
    write_codec(folders["codec"], seed, dtype, **(codec or {}))
    return folders
