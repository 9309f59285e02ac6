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


# Fields of model_config.yaml that must have these values for this implementation to be right;
# anything else in the file (names, training settings) is ignored.
_REQUIRED = {"mlp_class_name": "LLaMAMLP", "norm_class_name": "RMSNorm", "bias": False,
             "post_adapter": False}


def read_config(path: Path) -> OmniConfig:
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"{path}: unreadable ({error})") from error
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a model config (expected a mapping)")
    for key, wanted in _REQUIRED.items():
        if key in raw and raw[key] != wanted:
            raise CheckpointError(f"{path}: {key} is {raw[key]!r}; this engine needs {wanted!r}")
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
    if config.padded_vocab_size != config.text_vocab_size + 7 * config.audio_vocab_size:
        raise CheckpointError(f"{path}: padded_vocab_size {config.padded_vocab_size} is not text + 7 audio "
                              f"layers ({config.text_vocab_size} + 7 x {config.audio_vocab_size})")
    if config.n_head % config.n_query_groups:
        raise CheckpointError(f"{path}: n_head {config.n_head} is not a multiple of n_query_groups")
    return config


def config_yaml(config: OmniConfig) -> str:
    """The config as model_config.yaml text (what `read_config` reads back)."""
    lines = [f"{f.name}: {getattr(config, f.name)}" for f in fields(OmniConfig)]
    lines += [f"{k}: {v}" for k, v in _REQUIRED.items()]
    return "\n".join(lines).replace("True", "true").replace("False", "false") + "\n"
