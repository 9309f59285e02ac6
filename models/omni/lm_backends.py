"""Running the LLM one position at a time for several sequences: on llama.cpp (a converted GGUF,
fed input embeddings through `batch.embd`) or on the torch reference model.

Both backends keep a KV cache per sequence and return the full 181120-wide logits of each
sequence's newest position; the caller slices them per stream.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from models.engine import single_threaded, stop_if_cancelled
from models.omni import tokens as T
from models.omni.config import OmniConfig
from models.omni.convert import ADAPTER_FILE, EMBEDDINGS_FILE, GGUF_FILE, read_meta
from models.omni.inputs import stream_average
from models.omni.llama_log import quiet_llama
from models.omni.model import KVCache, OmniLM, SwiGLU

log = logging.getLogger(__name__)

_GGML_TYPE_F32 = 0
_FLASH_ATTN_DISABLED, _FLASH_ATTN_ENABLED = 0, 1
# Positions per prefill call. A cancel is seen between calls, so smaller parts let a cancelled
# reply free the model sooner, at a small cost per call: two parts for a 3 s turn (153
# positions) roughly halve the wait a cancelled reply imposes on the next one (docs/benchmarks.md).
PREFILL_CHUNK = 96


class Backend(Protocol):
    config: OmniConfig

    def embed(self, ids: np.ndarray, features: np.ndarray | None = None) -> np.ndarray: ...

    def adapt(self, whisper_features: torch.Tensor) -> np.ndarray: ...

    def start(self, prompts: list[np.ndarray], cancelled: Callable[[], bool] | None = None) -> list[np.ndarray]:
        """Forget everything, read one prompt ([T, C] embeddings) per sequence; return each
        sequence's logits at its last position. `cancelled` is asked between parts of the
        prompt; True raises Cancelled."""
        ...

    def step(self, inputs: list[np.ndarray | None]) -> list[np.ndarray | None]:
        """One more position per sequence ([C] each); their logits. A sequence given None is
        finished: it is not run again (None comes back), and only trailing ones may finish."""
        ...

    # Optional, the decoding loop's hot path where a backend has one (see generate.greedy_step):
    # def step_greedy(self, inputs, streams: list[tuple[int, ...]]) -> list[np.ndarray | None]


# ---- torch --------------------------------------------------------------------------------


class TorchBackend:
    """The reference model itself; the sequences of one reply run as one batch."""

    def __init__(self, model: OmniLM) -> None:
        self.model = model
        self.config = model.config
        self._table = model.embedding.weight.detach().numpy()
        self._cache: KVCache | None = None
        self._pos = 0

    @single_threaded
    def embed(self, ids, features=None):
        return stream_average(self._table, ids, features)

    @single_threaded
    def adapt(self, whisper_features):
        with torch.inference_mode():
            return self.model.adapt(whisper_features.float())[0].numpy()

    @single_threaded
    def start(self, prompts, cancelled=None):
        stop_if_cancelled(cancelled)  # one pass: asked before it only
        lengths = {len(p) for p in prompts}
        if len(lengths) != 1:
            raise ValueError("the torch backend batches its sequences: prompts must be equally long")
        x = torch.from_numpy(np.stack(prompts))
        self._cache = KVCache(self.config, len(prompts))
        self._pos = x.shape[1]
        with torch.inference_mode():
            return list(self.model(x, self._cache, 0)[:, -1].numpy())

    @single_threaded
    def step(self, inputs):
        if self._pos >= self._cache.capacity:
            raise ValueError("the context is full")
        active = _active(inputs)
        x = torch.from_numpy(np.stack(inputs[:active]))[:, None]
        with torch.inference_mode():
            logits = self.model(x, self._cache.head(active), self._pos)[:, -1].numpy()
        self._pos += 1
        return list(logits) + [None] * (len(inputs) - active)


# ---- llama.cpp ----------------------------------------------------------------------------


class LlamaBackend:
    """A converted folder (see convert.py) on llama.cpp's low-level API.

    step_mode: "separate" runs each sequence's position as its own call; "joint" puts both in
    one call. Which is cheaper depends on the device and the file (on these 2 cores: separate
    for q8_0; joint for f16, q4_k_m and q4_0): "auto" starts by whether layers are offloaded
    (joint on a GPU) and `calibrate()` then times both here and keeps the faster.
    """

    def __init__(
        self,
        folder: Path,
        threads: int = 2,
        gpu_layers: int = 0,
        sequences: int = 2,
        step_mode: str = "auto",
        batch: int = 256,
        adapter_device: str = "cpu",
        adapter_dtype: torch.dtype = torch.float32,
        flash_attention: bool = True,
    ) -> None:
        import llama_cpp

        folder = Path(folder)
        self.quant, self.config = read_meta(folder)
        self._table = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")  # rows are paged in as used
        self._adapter = SwiGLU(self.config.whisper_adapter_dim, self.config.intermediate_size, self.config.n_embd)
        self._adapter.load_state_dict(torch.load(folder / ADAPTER_FILE, map_location="cpu", weights_only=True))
        self._adapter.to(adapter_device, adapter_dtype).eval().requires_grad_(False)
        quiet_llama()
        llama_cpp.llama_backend_init()
        if step_mode == "auto":
            step_mode = "joint" if gpu_layers else "separate"
        if step_mode not in ("separate", "joint"):
            raise ValueError(f"step_mode {step_mode!r}: separate, joint or auto")
        self.step_mode = step_mode
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = gpu_layers
        self._model = llama_cpp.llama_model_load_from_file(str(folder / GGUF_FILE).encode(), mparams)
        if not self._model:
            raise RuntimeError(f"llama.cpp could not load {folder / GGUF_FILE}")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.config.block_size * sequences
        cparams.n_batch = cparams.n_ubatch = batch
        cparams.n_seq_max = sequences
        cparams.kv_unified = True  # one cache shared by the sequences, each may fill it
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.no_perf = True
        cparams.flash_attn_type = _FLASH_ATTN_ENABLED if flash_attention else _FLASH_ATTN_DISABLED
        if self.quant == "f32":
            # An f32 model is the exact check against torch: the f16 cache and the CPU flash
            # attention's f16 intermediates would be its largest errors (7e-4 relative).
            cparams.type_k = cparams.type_v = _GGML_TYPE_F32
            cparams.flash_attn_type = _FLASH_ATTN_DISABLED
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise RuntimeError("llama.cpp could not create a context for the Mini-Omni model")
        self._llama = llama_cpp
        # What llama.cpp was given, as the device plan asked (read by tests and benchmarks).
        self.params = {"n_gpu_layers": mparams.n_gpu_layers, "flash_attn_type": cparams.flash_attn_type}
        self._sequences = sequences
        self.prefill_chunk = min(batch, PREFILL_CHUNK)
        # The file may be wider than the model (zero channels for k-quants, see convert.widened):
        # inputs are padded with zeros to its width.
        width = llama_cpp.llama_model_n_embd(self._model)
        self._batch = llama_cpp.llama_batch_init(batch, width, sequences)
        self._embd = np.ctypeslib.as_array(self._batch.embd, shape=(batch, width))
        self._embd[:] = 0
        self._pos = [0] * sequences

    def close(self) -> None:
        if self._ctx:
            self._llama.llama_batch_free(self._batch)
            self._llama.llama_free(self._ctx)
            self._llama.llama_model_free(self._model)
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # a finalizer must not raise; the log says what was left unfreed
            log.warning("closing the llama.cpp model failed", exc_info=True)

    @single_threaded
    def embed(self, ids, features=None):
        return stream_average(self._table, ids, features)

    @single_threaded
    def adapt(self, whisper_features):
        weight = self._adapter.proj.weight
        with torch.inference_mode():
            return self._adapter(whisper_features.to(weight.device, weight.dtype))[0].float().cpu().numpy()

    @single_threaded
    def start(self, prompts, cancelled=None):
        memory = self._llama.llama_get_memory(self._ctx)
        self._llama.llama_memory_clear(memory, True)
        self._pos = [0] * self._sequences
        # The batch's prompts differ only in their last position: read the shared part once
        # and copy its cache entries to the other sequences (a bookkeeping step in llama.cpp).
        shared = _common_prefix(prompts)
        self._feed(0, prompts[0][:shared], want_last=shared == len(prompts[0]), cancelled=cancelled)
        for seq in range(1, len(prompts)):
            self._llama.llama_memory_seq_cp(memory, 0, seq, -1, -1)
            self._pos[seq] = shared
        logits = []
        for seq, prompt in enumerate(prompts):
            if shared < len(prompt):
                self._feed(seq, prompt[shared:], want_last=True)
                logits.append(self._logits(self._last_index))
            else:  # the whole prompt was shared: its last logits are sequence 0's
                logits.append(self._shared_logits)
        return logits

    def _feed(self, seq: int, rows: np.ndarray, want_last: bool, cancelled: Callable[[], bool] | None = None) -> None:
        for begin in range(0, len(rows), self.prefill_chunk):
            stop_if_cancelled(cancelled)
            chunk = rows[begin : begin + self.prefill_chunk]
            last = want_last and begin + len(chunk) == len(rows)
            self._decode([(seq, row, last and i == len(chunk) - 1) for i, row in enumerate(chunk)])
            self._last_index = len(chunk) - 1
        if want_last and seq == 0:
            self._shared_logits = self._logits(self._last_index)

    @single_threaded
    def step(self, inputs):
        return self._step(inputs, lambda seq, index: self._logits(index))

    @single_threaded
    def step_greedy(self, inputs, streams):
        """As `step`, but returns each sequence's greedy id in each of its `streams` (local ids
        for audio, global for text), read from llama.cpp's logits in place: no row of 181120 is
        copied, and only the columns of the streams asked for are read."""

        def choose(seq: int, index: int) -> np.ndarray:
            logits = self._logits_view(index)
            return np.array([greedy(logits, stream) for stream in streams[seq]])

        return self._step(inputs, choose)

    def _step(self, inputs, read: Callable[[int, int], np.ndarray]) -> list:
        # A sequence's logits are read before the next decode, which overwrites them.
        if max(self._pos) >= self.config.block_size:
            raise ValueError("the context is full")
        active = _active(inputs)
        if self.step_mode == "joint":
            self._decode([(seq, row, True) for seq, row in enumerate(inputs[:active])])
            out = [read(seq, seq) for seq in range(active)]
        else:
            out = []
            for seq, row in enumerate(inputs[:active]):
                self._decode([(seq, row, True)])
                out.append(read(seq, 0))
        return out + [None] * (len(inputs) - active)

    @single_threaded
    def calibrate(self, inputs: list[np.ndarray], steps: int = 4) -> dict[str, float]:
        """Time both step modes on this device (after a `start`) and keep the faster one.
        Returns seconds per step of each. Adds 2 x (steps + 1) positions to the sequences."""
        seconds = {}
        for mode in ("separate", "joint"):
            self.step_mode = mode
            self.step(inputs)  # the first call of a mode allocates its buffers
            t0 = time.perf_counter()
            for _ in range(steps):
                self.step(inputs)
            seconds[mode] = (time.perf_counter() - t0) / steps
        self.step_mode = min(seconds, key=lambda mode: seconds[mode])
        return seconds

    def _decode(self, rows: list[tuple[int, np.ndarray, bool]]) -> None:
        b = self._batch
        for j, (seq, row, want) in enumerate(rows):
            self._embd[j, : len(row)] = row
            b.pos[j] = self._pos[seq]
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq
            b.logits[j] = want
            self._pos[seq] += 1
        b.n_tokens = len(rows)
        code = self._llama.llama_decode(self._ctx, b)
        if code != 0:
            raise RuntimeError(f"llama.cpp decode failed (code {code})")

    def _logits(self, index: int) -> np.ndarray:
        return self._logits_view(index).copy()

    def _logits_view(self, index: int) -> np.ndarray:
        """llama.cpp's own logits buffer for output `index`; valid until the next decode."""
        pointer = self._llama.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.config.padded_vocab_size,))


def greedy(logits: np.ndarray, stream: int) -> int:
    """Greedy choice within one stream's columns; text ids are global, audio ids local."""
    lo, hi = T.stream_columns(stream)
    return int(np.argmax(logits[lo:hi])) + (lo if stream == T.TEXT else 0)


def _common_prefix(prompts: list[np.ndarray]) -> int:
    """How many leading positions all prompts share (equal embeddings)."""
    length = min(len(p) for p in prompts)
    same = np.ones(length, bool)
    for other in prompts[1:]:
        same &= (other[:length] == prompts[0][:length]).all(axis=1)
    return length if same.all() else int(np.argmin(same))


def _active(inputs: list) -> int:
    """How many leading sequences still run; finished ones (None) must all come last."""
    active = sum(x is not None for x in inputs)
    if any(x is None for x in inputs[:active]):
        raise ValueError("only the last sequences of a batch may finish")
    return active
