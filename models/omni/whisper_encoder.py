"""Whisper-small's audio encoder and its log-mel front end, written here (no openai-whisper).

Parameter names follow openai-whisper's checkpoint (`encoder.` prefix stripped), so its
`small.pt` state dict loads strictly. 16 kHz audio -> 80-bin log-mel at 100 frames/s ->
two convolutions (the second strides 2) -> 12 pre-norm transformer blocks -> [B, frames/2, 768].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.engine import single_threaded, stop_if_cancelled
from models.engine import SPEECH_RATE as RATE

N_FFT = 400
HOP = 160
N_MELS = 80
PADDED_SECONDS = 30  # whisper was trained on 30 s windows
PADDED_FRAMES = PADDED_SECONDS * RATE // HOP  # 3000 mel frames -> 1500 encoder frames


@dataclass(frozen=True)
class EncoderConfig:
    n_mels: int = N_MELS
    n_ctx: int = 1500
    n_state: int = 768
    n_head: int = 12
    n_layer: int = 12


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    # Slaney's scale (what whisper's filters use): linear below 1 kHz, logarithmic above.
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    linear = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, linear)


@lru_cache(maxsize=2)
def mel_filters(n_mels: int = N_MELS) -> torch.Tensor:
    """[n_mels, N_FFT/2+1] triangular filters on the Slaney mel scale, area-normalised."""
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


def log_mel(audio: torch.Tensor, n_mels: int = N_MELS) -> torch.Tensor:
    """[samples] or [B, samples] 16 kHz float audio -> [B, n_mels, samples // HOP] log-mel."""
    audio = audio.reshape(-1, audio.shape[-1]).float()
    window = torch.hann_window(N_FFT)
    spectrum = torch.stft(audio, N_FFT, HOP, window=window, return_complex=True)
    power = spectrum[..., :-1].abs() ** 2  # whisper drops the last frame
    mel = mel_filters(n_mels) @ power
    logs = torch.clamp(mel, min=1e-10).log10()
    logs = torch.maximum(logs, logs.amax(dim=(-2, -1), keepdim=True) - 8.0)
    return (logs + 4.0) / 4.0


def sinusoids(length: int, channels: int) -> torch.Tensor:
    increment = np.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


class _Attention(nn.Module):
    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """queries: only the first that many positions ask (all keys and values are used)."""
        B, T, C = x.shape
        Q = T if queries is None else queries
        q = self.query(x[:, :Q]).view(B, Q, self.n_head, -1).transpose(1, 2)
        k, v = (p(x).view(B, T, self.n_head, -1).transpose(1, 2) for p in (self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v)  # bidirectional: the encoder sees the whole clip
        return self.out(y.transpose(1, 2).reshape(B, Q, C))


class _Block(nn.Module):
    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.attn = _Attention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        """keep: only the first that many positions come out (they still attend to all)."""
        x = x[:, :keep] + self.attn(self.attn_ln(x), keep)
        return x + self.mlp(self.mlp_ln(x))


def half_precision(device_type: str) -> torch.dtype | None:
    """The reduced precision this device computes fast, or None to stay in float32."""
    if device_type == "cuda":
        return torch.float16
    if device_type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


class WhisperEncoder(nn.Module):
    positional_embedding: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv1d(config.n_mels, config.n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(config.n_state, config.n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(config.n_ctx, config.n_state))
        self.blocks = nn.ModuleList(_Block(config.n_state, config.n_head) for _ in range(config.n_layer))
        self.ln_post = nn.LayerNorm(config.n_state)

    def forward(
        self, mel: torch.Tensor, keep: int | None = None, cancelled: Callable[[], bool] | None = None
    ) -> torch.Tensor:
        """[B, n_mels, 2N] -> [B, N, n_state], N <= n_ctx; keep: only the first `keep` frames
        (the last block then computes those rows only, the same values: 7 % of a 30 s window).
        cancelled: asked before each block; True raises Cancelled (so a cancel waits for one
        block, not the whole pass)."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positional_embedding[: x.shape[1]].to(x.dtype)
        for i, block in enumerate(self.blocks):
            stop_if_cancelled(cancelled)
            x = block(x, keep if i == len(self.blocks) - 1 else None)
        return self.ln_post(x)

    @single_threaded
    def encode(
        self,
        audio: np.ndarray,
        frames: int,
        pad_to_30s: bool,
        fast: bool = True,
        cancelled: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """16 kHz mono audio -> [1, frames, n_state]: the first `frames` encoder frames.

        pad_to_30s=True is the original's way (the clip padded with silence to 30 s, 1500
        frames computed, the first `frames` kept). False encodes just enough silence-padded
        audio for `frames`, a fraction of the cost for a short turn; the features differ
        slightly because attention then sees less trailing silence (bench omni reports how much).
        fast: with float32 weights, run the matrix products in bfloat16 (float16 on a GPU) where the
        hardware has it: several times faster on a CPU with AVX512-BF16, features close to float32's
        (`voice-companion bench omni` reports both). Weights held in 16 bits compute in their own
        format either way.
        """
        limit = self.config.n_ctx
        if frames > limit:
            raise ValueError(f"the encoder takes at most {limit} frames ({limit / 50:.0f} s)")
        mel_frames = 2 * limit if pad_to_30s else 2 * frames
        padded = np.zeros(mel_frames * HOP, np.float32)
        clip = np.asarray(audio, np.float32)[: len(padded)]
        padded[: len(clip)] = clip
        device, dtype = self.conv1.weight.device, self.conv1.weight.dtype
        # Weights already in 16 bits (a GPU's placement) compute in them; float32 ones (a CPU's)
        # multiply in the device's fast format inside autocast when asked.
        half = half_precision(device.type) if fast and dtype == torch.float32 else None
        with torch.inference_mode():
            mel = log_mel(torch.from_numpy(padded), self.config.n_mels).to(device, dtype)
            with torch.autocast(device.type, dtype=half or torch.float32, enabled=half is not None):
                return self(mel, frames, cancelled).float().cpu()
