"""Mini-Omni's LLM as a GGUF that llama.cpp's qwen2 architecture runs, at f32/f16/q8_0/q4_k_m/q4_0.

q4_k_m is llama.cpp's recipe, but k-quants need rows of a multiple of 256 values and this model's
are 896 wide in every matrix but the feed-forward down projection: given as they are, llama.cpp
stores those in q5_0 instead (146 of 170 matrices), which has no repacked CPU kernel. So for
q4_k_m the model is first widened to 1024 (`widened`): zero columns and rows, two query heads
whose queries and output weights are zero, norm weights and epsilon rescaled so the normalized
values are the same; exact (an f32 file widened so gives torch's logits within 1e-4), 14% more
arithmetic, and every matrix a real k-quant. The recipe's q6_K head (no repacked CPU kernel) is
made q4_K, which makes a step markedly faster. q4_0 stores every matrix, the output head included,
in 4-bit blocks of 32 that llama.cpp repacks for the CPU's wide vector units: the fastest on a
CPU, at a larger quantization error (the order of errors: q8_0 < q4_k_m < q4_0). The step times
and errors: docs/benchmarks.md, `voice-companion bench omni`.

Only the transformer goes into the GGUF. The model is always fed input embeddings (the average
of 8 streams, which llama.cpp's token path cannot express), so the embedding table and the
whisper adapter are saved beside it and applied in Python. The vocabulary has no tokenizer
in llama.cpp's sense: `tokenizer.ggml.model = "none"` and `qwen2.vocab_size` keep the head's
181120 columns (without the size llama.cpp takes n_vocab = 0 and refuses the tables).

A converted folder holds: model.gguf, embeddings.npy ([181120, C], f32 for f32, else f16),
adapter.pt (the SwiGLU adapter's state dict) and omni.json (what was converted).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from models.omni.config import OmniConfig
from models.omni.model import OmniLM
from models.registry.atomic import replacing, write_json

GGUF_FILE, EMBEDDINGS_FILE, ADAPTER_FILE, META_FILE = "model.gguf", "embeddings.npy", "adapter.pt", "omni.json"
QUANTS = ("f32", "f16", "q8_0", "q4_k_m", "q4_0")
_GGML_TYPE_Q4_0, _GGML_TYPE_Q4_K = 2, 12
CONVERTER = 3  # bumped when a conversion of the same checkpoint would come out differently


def split_qkv(weight: torch.Tensor, config: OmniConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """litgpt's grouped rows ([q x per_group, k, v] per kv group, head_size rows each) ->
    separate q [n_head*D, ...], k [G*D, ...], v [G*D, ...] in head order. Works for biases too."""
    G, D = config.n_query_groups, config.head_size
    per_group = config.n_head // G
    grouped = weight.reshape(G, per_group + 2, D, *weight.shape[1:])
    q = grouped[:, :per_group].reshape(config.n_head * D, *weight.shape[1:])
    k = grouped[:, per_group].reshape(G * D, *weight.shape[1:])
    v = grouped[:, per_group + 1].reshape(G * D, *weight.shape[1:])
    return q, k, v


def gguf_tensors(model: OmniLM) -> Iterator[tuple[str, torch.Tensor]]:
    """(GGUF name, tensor) for every tensor llama.cpp's qwen2 graph reads."""
    config = model.config
    yield "token_embd.weight", model.embedding.weight
    yield "output_norm.weight", model.final_norm.weight
    yield "output.weight", model.lm_head.weight
    for i, block in enumerate(model.blocks):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", block.norm_1.weight
        for name, w in zip(("q", "k", "v"), split_qkv(block.attn.attn.weight, config)):
            yield p + f"attn_{name}.weight", w
        if block.attn.attn.bias is not None:
            for name, b in zip(("q", "k", "v"), split_qkv(block.attn.attn.bias, config)):
                yield p + f"attn_{name}.bias", b
        yield p + "attn_output.weight", block.attn.proj.weight
        yield p + "ffn_norm.weight", block.norm_2.weight
        yield p + "ffn_gate.weight", block.mlp.fc_1.weight  # silu side of SwiGLU
        yield p + "ffn_up.weight", block.mlp.fc_2.weight
        yield p + "ffn_down.weight", block.mlp.proj.weight


def widened(
    config: OmniConfig, tensors: Iterator[tuple[str, torch.Tensor]], width: int
) -> tuple[OmniConfig, Iterator[tuple[str, torch.Tensor]]]:
    """The same model at a larger width, for k-quants (rows of a multiple of 256 values).

    The residual stream gains `width - n_embd` channels that stay zero: every matrix that reads it
    gets zero columns, every one that writes it zero rows, and the norms zero weights there. An
    RMS norm then averages over more channels, so its epsilon and weights are scaled by
    n_embd / width and its square root: the normalized values do not change. The attention keeps
    its head size; the extra width becomes query heads (the same number in each key/value group,
    last in the group) whose queries are zero and whose outputs the output projection ignores."""
    extra = width - config.n_embd
    groups, size = config.n_query_groups, config.head_size
    if extra < 0 or extra % (size * groups):
        raise ValueError(f"cannot widen {config.n_embd} to {width} in whole heads per group")
    per_group, added = config.n_head // groups, extra // (size * groups)
    wide = OmniConfig(
        **{
            **asdict(config),
            "n_embd": width,
            "n_head": config.n_head + added * groups,
            "norm_eps": config.norm_eps * config.n_embd / width,
        }
    )
    scale = (config.n_embd / width) ** 0.5

    def heads(t: torch.Tensor, dim: int) -> torch.Tensor:  # zero heads after each group's own
        shape = list(t.shape)
        parts = t.reshape(shape[:dim] + [groups, per_group * size] + shape[dim + 1 :])
        pad = [0, 0] * (len(shape) - dim - 1) + [0, added * size]
        return torch.nn.functional.pad(parts, pad).reshape(shape[:dim] + [-1] + shape[dim + 1 :])

    def grown(t: torch.Tensor, dim: int) -> torch.Tensor:  # zero channels at the end of `dim`
        pad = [0, 0] * (t.ndim - dim - 1) + [0, extra]
        return torch.nn.functional.pad(t, pad)

    def convert_one(name: str, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().float()
        if name.endswith("norm.weight"):
            return grown(t * scale, 0)
        if name in ("token_embd.weight", "output.weight") or name.endswith(
            ("attn_k.weight", "attn_v.weight", "ffn_gate.weight", "ffn_up.weight")
        ):
            return grown(t, 1)
        if name.endswith("attn_q.weight"):
            return grown(heads(t, 0), 1)
        if name.endswith("attn_q.bias"):
            return heads(t, 0)
        if name.endswith("attn_output.weight"):
            return grown(heads(t, 1), 0)
        if name.endswith("ffn_down.weight"):
            return grown(t, 0)
        return t  # attn_k / attn_v biases

    return wide, ((name, convert_one(name, t)) for name, t in tensors)


def k_quant_width(config: OmniConfig) -> int | None:
    """The width k-quants need (a multiple of 256), when the model is not already there and can
    be widened in whole heads per group; else None."""
    width = -(-config.n_embd // 256) * 256
    if width == config.n_embd or (width - config.n_embd) % (config.head_size * config.n_query_groups):
        return None
    return width


def write_gguf(path: Path, model: OmniLM, f16: bool = False, width: int | None = None) -> None:
    import gguf

    c = model.config
    tensors = gguf_tensors(model)
    if width is not None:
        c, tensors = widened(c, tensors, width)
    with replacing(Path(path)) as tmp:
        writer = gguf.GGUFWriter(tmp, "qwen2")
        writer.add_name("mini-omni")
        writer.add_context_length(c.block_size)
        writer.add_embedding_length(c.n_embd)
        writer.add_block_count(c.n_layer)
        writer.add_feed_forward_length(c.intermediate_size)
        writer.add_head_count(c.n_head)
        writer.add_head_count_kv(c.n_query_groups)
        writer.add_key_length(c.head_size)
        writer.add_value_length(c.head_size)
        writer.add_rope_freq_base(c.rope_base)
        writer.add_layer_norm_rms_eps(c.norm_eps)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
        writer.add_tokenizer_model("none")
        writer.add_vocab_size(c.padded_vocab_size)
        for name, tensor in tensors:
            array = tensor.detach().float().contiguous().numpy()
            # Norms and biases stay f32 (llama.cpp adds them in f32); matrices may be halved.
            writer.add_tensor(name, array.astype(np.float16) if f16 and array.ndim == 2 else array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        _fsync(tmp)


def quantize(source: Path, target: Path, quant: str, threads: int = 0) -> None:
    """llama.cpp's own quantizer, from an f32 GGUF."""
    import llama_cpp

    from models.omni.llama_log import quiet_llama

    quiet_llama()
    ftype = {
        "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
        "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    }[quant]
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = ftype
    if quant == "q4_0":
        # The head too: llama.cpp would keep it in q8_0 (its q6_K does not fit 896-wide rows),
        # whose two-row product is slower than two one-row ones and costs the joint step 20 ms.
        params.output_tensor_type = _GGML_TYPE_Q4_0
    elif quant == "q4_k_m":
        # The recipe's q6_K head has no repacked CPU kernel, and the 181120 x 1024 head is 40 % of
        # what a step reads: q4_K makes the step markedly faster for a negligible logit error.
        params.output_tensor_type = _GGML_TYPE_Q4_K
    with replacing(Path(target)) as tmp:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), params)
        if code != 0:
            raise RuntimeError(f"llama.cpp could not quantize {source} to {quant} (code {code})")
        _fsync(tmp)


def convert(model: OmniLM, folder: Path, quant: str, threads: int = 0, width: int | None = None) -> Path:
    """Write the converted folder for `quant`; returns it. Every file is replaced atomically.
    `width`: the GGUF's (see `widened`); by default widened only for the k-quant q4_k_m."""
    if quant not in QUANTS:
        raise ValueError(f"quantization {quant!r}: choose one of {', '.join(QUANTS)}")
    if width is None and quant == "q4_k_m":
        width = k_quant_width(model.config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / GGUF_FILE
    if quant in ("f32", "f16"):
        write_gguf(target, model, f16=quant == "f16", width=width)
    else:
        staging = folder / f".{GGUF_FILE}.f32"
        try:
            write_gguf(staging, model, width=width)
            quantize(staging, target, quant, threads)
        finally:
            staging.unlink(missing_ok=True)
    table = model.embedding.weight.detach().numpy()
    with replacing(folder / EMBEDDINGS_FILE) as tmp:
        with open(tmp, "xb") as f:
            np.save(f, table if quant == "f32" else table.astype(np.float16))
            f.flush()
            os.fsync(f.fileno())
    with replacing(folder / ADAPTER_FILE) as tmp:
        torch.save({k: v.contiguous() for k, v in model.whisper_adapter.state_dict().items()}, tmp)
        _fsync(tmp)
    write_json(folder / META_FILE, {"quant": quant, "config": asdict(model.config), "converter": CONVERTER})
    return folder


def read_meta(folder: Path) -> tuple[str, OmniConfig]:
    data = json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
    return data["quant"], OmniConfig(**data["config"])


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
