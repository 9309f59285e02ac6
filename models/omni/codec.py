"""Streaming SNAC decode: frames in as the model makes them, audio out, seamless.

SNAC's decoder is a stack of convolutions, so a sample depends only on a few frames either side
of it. Each chunk is decoded with `left` frames of context before the new frames and `right`
frames after them, and only the new frames' samples are kept; a short crossfade at each
boundary absorbs what little the context leaves different. The decoder's noise (added even in
eval mode) is drawn per absolute sample position from a seeded generator, so a chunk and the
whole utterance see the same noise. Flushing decodes the held-back frames: none is lost.

On the CPU a third of SNAC's decode time was its Snake activations (five whole-tensor passes
each) and a fifth its depthwise dilated convolutions (oneDNN's dilated depthwise path is slow):
`SeededCodec` runs both over cache-sized time blocks instead, and folds the weight norm into the
weights once (`_faster_decoder`), the same arithmetic to float rounding.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from models.engine import single_threaded
from models.omni.tokens import frames_to_codes

SAMPLES_PER_FRAME = 2048  # 512 hop x 4 latent steps per coarse code at 24 kHz
LATENTS_PER_FRAME = 4
_NOISE_BLOCK = 4096


@lru_cache(maxsize=8192)
def _noise_block(seed: int, layer: int, block: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed((seed * 1_000_003 + layer * 7919 + block) % 2**63)
    return torch.randn(_NOISE_BLOCK, generator=generator)


def positional_noise(seed: int, layer: int, start: int, length: int) -> torch.Tensor:
    """Standard normal noise for absolute samples [start, start+length) of one decoder layer."""
    first, last = start // _NOISE_BLOCK, (start + length - 1) // _NOISE_BLOCK
    joined = torch.cat([_noise_block(seed, layer, b) for b in range(first, last + 1)])
    offset = start - first * _NOISE_BLOCK
    return joined[offset : offset + length]


class SeededCodec:
    """A SNAC model whose noise depends on sample position only; `decode(frames, first)`
    decodes [F, 7] local-id frames that start at absolute frame `first`. It takes over the
    model's noise blocks: one SeededCodec per SNAC instance."""

    def __init__(self, snac, seed: int = 0, faster: bool = True) -> None:
        from snac.layers import DecoderBlock, NoiseBlock

        self.snac = snac
        if faster:
            _faster_decoder(snac.decoder)
        self.seed = seed
        self.rate = int(snac.sampling_rate)
        self._first = 0
        # Each decoder block upsamples, then adds noise at its own rate: samples per frame there.
        scale = LATENTS_PER_FRAME
        for layer, block in enumerate(b for b in snac.decoder.model if isinstance(b, DecoderBlock)):
            scale *= _upsampling(block)
            for noise in (m for m in block.modules() if isinstance(m, NoiseBlock)):
                noise.forward = self._noise_forward(noise, layer, scale)

    def _noise_forward(self, noise_block, layer: int, scale: int):
        def forward(x: torch.Tensor) -> torch.Tensor:
            B, _, T = x.shape
            n = positional_noise(self.seed, layer, self._first * scale, T).to(x.device, x.dtype)
            return x + n.view(1, 1, T) * noise_block.linear(x)

        return forward

    @single_threaded
    def decode(self, frames: np.ndarray, first: int = 0) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(0, np.float32)
        device = next(self.snac.parameters()).device
        codes = [torch.from_numpy(c)[None].to(device) for c in frames_to_codes(frames)]
        self._first = first
        with torch.inference_mode():
            return self.snac.decode(codes)[0, 0].float().cpu().numpy()


_BLOCK_VALUES = 1 << 17  # per block pass: time steps = this / channels (512 KB of float32; smaller
# blocks fall under torch's 32768-value grain and run on one thread)


def _time_blocks(length: int, channels: int):
    step = max(256, _BLOCK_VALUES // channels)
    return ((begin, min(length, begin + step)) for begin in range(0, length, step))


def _faster_decoder(decoder) -> None:
    """Weight norm folded into the weights; Snake and depthwise convolutions by time blocks."""
    from torch import nn
    from torch.nn.utils import parametrize
    from snac.layers import Snake1d

    for module in decoder.modules():
        if parametrize.is_parametrized(module):
            parametrize.remove_parametrizations(module, "weight")
        elif hasattr(module, "weight_g"):  # the older weight_norm hook
            nn.utils.remove_weight_norm(module)
    for module in decoder.modules():
        if isinstance(module, Snake1d):
            module.forward = _blocked_snake(module)
        elif (
            isinstance(module, nn.Conv1d)
            and module.groups == module.in_channels == module.out_channels
            and module.stride == (1,)
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
        ):
            module.forward = _blocked_depthwise(module)  # type: ignore[method-assign]  # this instance's only


def _blocked_snake(snake):
    """x + sin(alpha x)^2 / alpha, as SNAC's snake, with one temporary per cache-sized block
    (on the CPU; a GPU keeps SNAC's own, one kernel per operation)."""
    own = snake.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not x.is_cpu:
            return own(x)
        alpha = snake.alpha
        inverse = (alpha + 1e-9).reciprocal()
        out = torch.empty_like(x)
        for begin, end in _time_blocks(x.shape[-1], x.shape[1]):
            part = x[..., begin:end]
            wave = torch.mul(part, alpha).sin_().square_()
            torch.addcmul(part, wave, inverse, out=out[..., begin:end])
        return out

    return forward


def _blocked_depthwise(conv):
    """A depthwise convolution (stride 1, zero padding) as a sum of shifted, scaled copies
    (on the CPU; a GPU keeps the convolution)."""
    own = conv.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not x.is_cpu:
            return own(x)
        (size,), (dilation,), (pad,) = conv.kernel_size, conv.dilation, conv.padding
        channels = x.shape[1]
        padded = torch.nn.functional.pad(x, (pad, pad))
        length = padded.shape[-1] - dilation * (size - 1)
        taps = conv.weight[:, 0, :].t().reshape(size, 1, channels, 1)
        out = x.new_empty(x.shape[0], channels, length)
        for begin, end in _time_blocks(length, channels):
            y = out[..., begin:end]
            if conv.bias is None:
                torch.mul(padded[..., begin:end], taps[0], out=y)
            else:
                torch.addcmul(conv.bias.view(1, channels, 1), padded[..., begin:end], taps[0], out=y)
            for j in range(1, size):
                shift = j * dilation
                y.addcmul_(padded[..., begin + shift : end + shift], taps[j])
        return out

    return forward


def _upsampling(block) -> int:
    from torch import nn

    for m in block.modules():
        if isinstance(m, nn.ConvTranspose1d):
            return int(m.stride[0])
    return 1


class StreamingDecoder:
    """Push frames one at a time; get audio chunks that join into the whole decode.

    first: frames in the first chunk (1 = as early as the delay pattern allows); later chunks
    double up to `chunk` frames: small while playback has little buffered, larger (less context
    decoded twice) once generation, faster than real time, is ahead. left/right: context frames
    (3 and 2 keep the join within 3e-4 of the peak; 1 on the right leaves 3e-2); fade: crossfade
    samples.
    """

    def __init__(
        self, codec: SeededCodec, first: int = 1, chunk: int = 8, left: int = 3, right: int = 2, fade: int = 256
    ) -> None:
        self.codec = codec
        self.first, self.chunk, self.left, self.right, self.fade = first, chunk, left, right, fade
        self.frames: list[np.ndarray] = []
        self._done = 0  # frames whose samples are out (or held for the crossfade)
        self._next = first
        self._held = np.zeros(0, np.float32)

    def push(self, frame: np.ndarray) -> np.ndarray:
        self.frames.append(np.asarray(frame, np.int64))
        if len(self.frames) - self.right - self._done >= self._next:
            self._next = min(self.chunk, self._next * 2)
            return self._emit(len(self.frames) - self.right)
        return np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """Everything not yet out, including the frames held for right context."""
        out = self._emit(len(self.frames), final=True)
        self.frames, self._done, self._next, self._held = [], 0, self.first, np.zeros(0, np.float32)
        return out

    def _emit(self, until: int, final: bool = False) -> np.ndarray:
        if until <= self._done:
            out, self._held = self._held, np.zeros(0, np.float32)
            return out if final else np.zeros(0, np.float32)
        start = max(0, self._done - self.left)
        stop = min(len(self.frames), until + self.right)
        audio = self.codec.decode(np.stack(self.frames[start:stop]), start)
        # New samples from the boundary (minus the held tail, which is crossfaded) to `until`.
        begin = (self._done - start) * SAMPLES_PER_FRAME - len(self._held)
        fresh = audio[begin : (until - start) * SAMPLES_PER_FRAME]
        n = len(self._held)
        if n:
            ramp = np.linspace(0.0, 1.0, n + 2, dtype=np.float32)[1:-1]
            fresh = fresh.copy()
            fresh[:n] = self._held * (1 - ramp) + fresh[:n] * ramp
        self._done = until
        if final:
            self._held = np.zeros(0, np.float32)
            return fresh
        keep = min(self.fade, len(fresh))
        self._held = fresh[len(fresh) - keep :].copy()
        return fresh[: len(fresh) - keep]
