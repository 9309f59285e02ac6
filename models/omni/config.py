"""The LLM's shape, as `model_config.yaml` states it (litgpt's field names)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not the layout this engine was written for.
    The message is one line that names the file and what is wrong."""


@dataclass(frozen=True)
class OmniConfig:
    n_layer: int = 24
    n_embd: int = 896
    n_head: int = 14
    n_query_groups: int = 2
    head_size: int = 64
    intermediate_size: int = 4864
    norm_eps: float = 1e-6
    rope_base: float = 1e6
    padded_vocab_size: int = 181120
    text_vocab_size: int = 152000
    audio_vocab_size: int = 4160
    whisper_adapter_dim: int = 768
    block_size: int = 2048
    add_qkv_bias: bool = True
    tie_word_embeddings: bool = True

    @property
    def qkv_rows(self) -> int:
        return (self.n_head + 2 * self.n_query_groups) * self.head_size


# Fields of model_config.yaml (litgpt's names) that must have these values for this
# implementation to be right: it computes exactly these (rotary embedding over the whole head,
# sequential residual with its own norm per branch, unscaled embeddings, no head bias, ...). A
# file that leaves one out gets litgpt's default, which is this value; anything else in the file
# (names, training settings) is ignored.
_REQUIRED = {
    "mlp_class_name": "LLaMAMLP",
    "norm_class_name": "RMSNorm",
    "bias": False,
    "post_adapter": False,
    "rotary_percentage": 1.0,
    "parallel_residual": False,
    "shared_attention_norm": False,
    "scale_embeddings": False,
    "lm_head_bias": False,
    "pos_type": "rope",
    "rope_condense_ratio": 1,
    "rope_adjustments": None,
    "n_expert": 0,
    "norm_qk": False,
    "post_attention_norm": False,
    "post_mlp_norm": False,
    "attention_logit_softcapping": None,
    "final_logit_softcapping": None,
    "attention_scores_scalar": None,
}


def _same(found, wanted) -> bool:
    if isinstance(wanted, bool) or wanted is None or isinstance(wanted, str):
        return found == wanted and type(found) is type(wanted)
    try:  # numbers: 1, 1.0 and YAML's "1e0" (read as a string) are the same value
        return not isinstance(found, bool) and float(found) == wanted
    except (TypeError, ValueError):
        return False


def read_config(path: Path) -> OmniConfig:
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"{path}: unreadable ({error})") from error
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a model config (expected a mapping)")
    for key, wanted in _REQUIRED.items():
        if key in raw and not _same(raw[key], wanted):
            raise CheckpointError(f"{path}: {key} is {raw[key]!r}; this engine implements only {wanted!r}")
    names = {f.name for f in fields(OmniConfig)}
    values = {k: v for k, v in raw.items() if k in names and v is not None}
    if "norm_eps" not in values and "eps" in raw:
        values["norm_eps"] = raw["eps"]
    defaults = OmniConfig()
    try:
        # PyYAML reads "1e-06" (no dot) as a string: cast every value to its field's type.
        config = OmniConfig(**{k: type(getattr(defaults, k))(v) for k, v in values.items()})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: {error}") from error
    window = raw.get("sliding_window_size")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < config.block_size):
        # A window at least as long as the context is no window; a shorter one is not implemented.
        raise CheckpointError(
            f"{path}: sliding_window_size is {window!r}; this engine implements only none "
            f"(or one of at least block_size, {config.block_size})"
        )
    if config.padded_vocab_size != config.text_vocab_size + 7 * config.audio_vocab_size:
        raise CheckpointError(
            f"{path}: padded_vocab_size {config.padded_vocab_size} is not text + 7 audio "
            f"layers ({config.text_vocab_size} + 7 x {config.audio_vocab_size})"
        )
    if config.n_head % config.n_query_groups:
        raise CheckpointError(f"{path}: n_head {config.n_head} is not a multiple of n_query_groups")
    return config


def config_yaml(config: OmniConfig) -> str:
    """The config as model_config.yaml text (what `read_config` reads back)."""
    import yaml

    values = {f.name: getattr(config, f.name) for f in fields(OmniConfig)} | _REQUIRED
    return yaml.safe_dump(values, sort_keys=False)
