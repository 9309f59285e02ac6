"""The Mini-Omni LLM in torch: Qwen2-0.5B's shape with 8 averaged input streams and one
181120-wide head. This is the numerical truth the llama.cpp runtime is checked against.

Module names follow litgpt's, so `lit_model.pth` loads with a strict `load_state_dict`.
Shapes in comments: B batch, T positions, C n_embd, H heads, G kv groups, D head size.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from models.omni.config import OmniConfig


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()  # in fp32 whatever the weights are, as litgpt does
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.float()).to(dtype)


class SwiGLU(nn.Module):
    """proj(silu(fc_1 x) * fc_2 x): litgpt's LLaMAMLP, also the whisper adapter."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.fc_1 = nn.Linear(n_in, n_hidden, bias=False)
        self.fc_2 = nn.Linear(n_in, n_hidden, bias=False)
        self.proj = nn.Linear(n_hidden, n_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.silu(self.fc_1(x)) * self.fc_2(x))


def rope_tables(config: OmniConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, D] for NeoX-style (rotate-half) rotary embedding over the whole head."""
    d = config.head_size
    theta = config.rope_base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    angles = positions.float()[:, None] * theta[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class KVCache:
    """Keys and values of every layer for positions seen so far: [B, G, block_size, D] each."""

    def __init__(
        self, config: OmniConfig, batch: int, dtype: torch.dtype = torch.float32, length: int | None = None
    ) -> None:
        shape = (batch, config.n_query_groups, length or config.block_size, config.head_size)
        self.k = [torch.zeros(shape, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype) for _ in range(config.n_layer)]

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def head(self, batch: int) -> "KVCache":
        """A view of the first `batch` sequences' entries (writes go through to this cache)."""
        view = object.__new__(KVCache)
        view.k = [k[:batch] for k in self.k]
        view.v = [v[:batch] for v in self.v]
        return view


class Attention(nn.Module):
    def __init__(self, config: OmniConfig) -> None:
        super().__init__()
        self.config = config
        self.attn = nn.Linear(config.n_embd, config.qkv_rows, bias=config.add_qkv_bias)
        self.proj = nn.Linear(config.n_head * config.head_size, config.n_embd, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None, layer: int, start: int
    ) -> torch.Tensor:
        c = self.config
        B, T, _ = x.shape
        per_group = c.n_head // c.n_query_groups
        # litgpt's grouped rows: for each kv group, its q heads, then its k head, then its v head.
        qkv = self.attn(x).view(B, T, c.n_query_groups, per_group + 2, c.head_size)
        q = qkv[:, :, :, :per_group].reshape(B, T, c.n_head, c.head_size).transpose(1, 2)  # B H T D
        k = qkv[:, :, :, per_group].transpose(1, 2)  # B G T D
        v = qkv[:, :, :, per_group + 1].transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            cache.k[layer][:, :, start : start + T] = k
            cache.v[layer][:, :, start : start + T] = v
            k = cache.k[layer][:, :, : start + T]
            v = cache.v[layer][:, :, : start + T]
        k = k.repeat_interleave(per_group, dim=1)
        v = v.repeat_interleave(per_group, dim=1)
        # Query i (absolute start+i) sees keys 0..start+i.
        mask = torch.ones(T, k.shape[2], dtype=torch.bool).tril(diagonal=k.shape[2] - T)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=c.head_size**-0.5)
        return self.proj(y.transpose(1, 2).reshape(B, T, c.n_head * c.head_size))


class Block(nn.Module):
    def __init__(self, config: OmniConfig) -> None:
        super().__init__()
        self.norm_1 = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = Attention(config)
        self.norm_2 = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = SwiGLU(config.n_embd, config.intermediate_size, config.n_embd)

    def forward(self, x, cos, sin, cache, layer, start):
        x = x + self.attn(self.norm_1(x), cos, sin, cache, layer, start)
        return x + self.mlp(self.norm_2(x))


class OmniLM(nn.Module):
    def __init__(self, config: OmniConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.padded_vocab_size, config.n_embd),
                "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                "ln_f": RMSNorm(config.n_embd, config.norm_eps),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        self.whisper_adapter = SwiGLU(config.whisper_adapter_dim, config.intermediate_size, config.n_embd)

    # The transformer's parts under the checkpoint's names (transformer.wte, .h, .ln_f), typed.
    @property
    def embedding(self) -> nn.Embedding:
        return cast(nn.Embedding, self.transformer["wte"])

    @property
    def blocks(self) -> list[Block]:
        return [cast(Block, block) for block in cast(nn.ModuleList, self.transformer["h"])]

    @property
    def final_norm(self) -> RMSNorm:
        return cast(RMSNorm, self.transformer["ln_f"])

    def adapt(self, whisper_features: torch.Tensor) -> torch.Tensor:
        """[B, L, 768] whisper encoder output -> [B, L, C]."""
        return self.whisper_adapter(whisper_features)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, start: int = 0) -> torch.Tensor:
        """[B, T, C] input embeddings at positions start..start+T-1 -> [B, T, 181120] logits."""
        T = x.shape[1]
        cos, sin = rope_tables(self.config, torch.arange(start, start + T))
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i, start)
        return self.lm_head(self.final_norm(x))
