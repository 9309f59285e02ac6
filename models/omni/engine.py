"""Mini-Omni behind the Engine contract: the user's speech in, its answer out as text and SNAC
audio made in the same steps, so the first sound comes before the answer is thought through.

One worker thread per reply runs encoder -> prefill -> steps, decoding audio chunks as frames
complete, holding the engine's lease; `respond()` relays its events and watches the reply's token,
so a cancel ends the iterator at once and the worker stops within one step, or one encoder block
or prefill part before the steps begin: a reply started at a pause and cancelled when the user
goes on does not hold up the next one by a whole encoder pass. Mini-Omni has no conversation
memory and takes no instructions: history is not read, and the core applies style to the audio it
makes.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from models.devices import DevicePlan, Machine, Placement, plan_devices, start_on_device, torch_dtype
from models.engine import (
    Cancelled,
    CancelToken,
    Capabilities,
    EndReason,
    EngineEvent,
    Message,
    ModelLease,
    ReplyAudio,
    ReplyDone,
    ReplyText,
    StageTime,
    Style,
    TranscriptFinal,
    UserTurn,
    start_reply,
)
from models.omni import tokens as T
from models.omni.codec import SeededCodec, StreamingDecoder
from models.omni.generate import Step, Stop, step_ids, text_guided
from models.omni.lm_backends import Backend
from models.omni.whisper_encoder import RATE, WhisperEncoder


@dataclass(frozen=True)
class OmniOptions:
    # The original pads every input to whisper's 30 s window. Encoding only the frames needed is
    # far cheaper on a short turn, but changes the features a lot (attention spreads over the
    # padding; `voice-companion bench omni` measures both). The window is kept, as the model was
    # trained, and made cheap by bfloat16 instead. Re-measure with the real weights before switching.
    pad_to_30s: bool = True
    max_positions: int = 2048
    first_chunk_frames: int = 1  # audio once the delay (7 steps) and 2 frames of right context allow
    chunk_frames: int = 8  # later chunks grow 2, 4, 8 frames: see StreamingDecoder
    codec_seed: int = 0


class OmniEngine:
    capabilities = Capabilities(
        streaming_text=True,
        streaming_audio=True,
        instruction_styles=False,
        voice_matching=False,
        native_speed=False,
    )

    def __init__(
        self, backend: Backend, encoder: WhisperEncoder, codec, tokenizer, options: OmniOptions = OmniOptions()
    ) -> None:
        self.backend, self.encoder, self.tokenizer, self.options = backend, encoder, tokenizer, options
        self.codec = SeededCodec(codec, options.codec_seed)
        self.output_rate = self.codec.rate
        self.lease = ModelLease()
        self.step_times: dict[str, float] = {}  # seconds per step of each llama.cpp step mode
        self.placements: dict[str, Placement] = {}  # where each part runs (see load_engine)
        self.notices: tuple[str, ...] = ()  # parts that could not start on the GPU, and why

    def warm(self) -> None:
        """Allocate every runtime's buffers with a short turn, so the first real one is as fast."""
        turn = UserTurn(audio=np.random.default_rng(0).normal(0, 0.01, RATE // 2).astype(np.float32))
        with self.lease:
            for _ in self._generate(turn, CancelToken(), max_steps=T.N_AUDIO + 3):
                pass
            calibrate = getattr(self.backend, "calibrate", None)
            if calibrate is not None:  # llama.cpp: one call for both sequences, or one each?
                row = self.backend.embed(step_ids(np.full(T.N_AUDIO, T.PAD_A), T.PAD_T))[0]
                self.step_times = calibrate([row, row])

    def prime(self, history: tuple[Message, ...], style: Style) -> None:
        """Nothing to prepare: each reply's prompt is the user's own audio."""

    def speed_left(self, speed: float) -> float:
        """No speed control of its own (native_speed is False): the core's style makes up all of it."""
        return speed

    def respond(self, turn: UserTurn, style: Style, token: CancelToken) -> Iterator[EngineEvent]:
        def work(events: queue.Queue) -> None:
            for event in self._generate(turn, token):
                events.put(event)

        return start_reply(self.lease, token, "omni", work)

    def _prompts(
        self, turn: UserTurn, token: CancelToken
    ) -> tuple[tuple[T.Prompt, T.Prompt], np.ndarray | None, float]:
        """The batch's two prompts, the adapted audio features and the encoder's seconds.
        Raises Cancelled between encoder blocks once the reply is cancelled."""
        if turn.text is not None:
            ids = self.tokenizer.encode(turn.text).ids
            return (T.t1a2(ids), T.t1t2(ids)), None, 0.0
        if turn.rate != RATE:
            raise ValueError(f"audio must be {RATE} Hz, got {turn.rate}")
        frames = T.whisper_frames(len(turn.audio))
        t0 = time.perf_counter()
        whisper = self.encoder.encode(turn.audio, frames, self.options.pad_to_30s, cancelled=lambda: token.cancelled)
        features = self.backend.adapt(whisper)
        return T.text_guided_batch(frames), features, time.perf_counter() - t0

    def _generate(self, turn: UserTurn, token: CancelToken, max_steps: int | None = None) -> Iterator[EngineEvent]:
        t0 = time.perf_counter()
        try:
            prompts, features, encoding = self._prompts(turn, token)
        except Cancelled:
            yield ReplyDone(EndReason.CANCELLED)
            return
        if turn.text is None:
            yield StageTime("encoder", encoding)
        # Mini-Omni answers speech directly; it makes no transcript of it (an empty one is honest).
        yield TranscriptFinal(turn.text or "")
        limit = self.options.max_positions
        if max_steps is not None:
            limit = min(limit, prompts[0].length + max_steps)
        stream = StreamingDecoder(self.codec, first=self.options.first_chunk_frames, chunk=self.options.chunk_frames)
        texts: list[int] = []
        said = ""
        first_step = first_audio = None
        reason = EndReason.COMPLETE
        for item in text_guided(self.backend, prompts, features, lambda: token.cancelled, limit):
            if isinstance(item, Stop):
                reason = EndReason.CANCELLED if item.reason == "cancelled" else EndReason.COMPLETE
                break
            step: Step = item
            if first_step is None:
                first_step = time.perf_counter()
                yield StageTime("llm_first_token", first_step - t0 - encoding)
            if step.text is not None:
                texts.append(step.text)
                whole = self.tokenizer.decode(texts)
                if len(whole) > len(said) and not whole.endswith("\ufffd"):  # whole characters only
                    yield ReplyText(whole[len(said) :])
                    said = whole
            if step.frame is not None:
                samples = stream.push(step.frame)
                if len(samples):
                    if first_audio is None:
                        first_audio = time.perf_counter()
                        yield StageTime("tts_first_audio", first_audio - first_step)
                    yield ReplyAudio(samples, self.output_rate)
        if reason == EndReason.CANCELLED or token.cancelled:
            yield ReplyDone(EndReason.CANCELLED)
            return
        tail = stream.flush()
        if len(tail):
            yield ReplyAudio(tail, self.output_rate)
        spoke = first_audio is not None or len(tail) > 0
        yield ReplyDone(EndReason.COMPLETE if spoke else EndReason.EMPTY)


# ---- loading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OmniPaths:
    lm_dir: Path  # lit_model.pth, model_config.yaml, tokenizer.json
    encoder_file: Path  # whisper small.pt
    codec_dir: Path  # SNAC config.json + pytorch_model.bin
    converted_dir: Path | None = None  # a converted GGUF folder (llama.cpp backend)


def load_engine(
    paths: OmniPaths,
    backend: str = "llama",
    threads: int = 2,
    plan: DevicePlan | None = None,
    options: OmniOptions = OmniOptions(),
    warm: bool = True,
) -> OmniEngine:
    """backend: "llama" (a converted GGUF) or "torch" (the float32 reference, on the CPU);
    plan: where each part runs and in which number format (default: everything on the CPU).
    A part that fails to start on a GPU starts on the CPU; `engine.notices` says so."""
    from models.omni.checkpoint import load_tokenizer
    from models.omni.lm_backends import TorchBackend

    torch.set_num_threads(threads)
    plan = plan or plan_devices("cpu", Machine())
    notices: list[str] = []
    encoder, encoder_at = start_on_device(
        "the speech encoder", plan.omni_encoder, lambda p: start_encoder(paths.encoder_file, p), notices
    )
    codec, codec_at = start_on_device("the audio codec", plan.snac, lambda p: start_codec(paths.codec_dir, p), notices)
    if backend == "torch":
        from models.omni.checkpoint import load_lm

        lm: Backend = TorchBackend(load_lm(paths.lm_dir))
        lm_at = adapter_at = Placement("cpu", "float32", "the torch backend is the float32 reference")
    elif backend == "llama":
        converted = paths.converted_dir
        if converted is None:
            raise ValueError("the llama.cpp backend needs a converted model folder")
        # The adapter reads the encoder's output: it runs where the encoder ended up.
        adapter_at = encoder_at
        lm, lm_at = start_on_device(
            "the Mini-Omni language model",
            plan.omni_llm,
            lambda p: start_llama(converted, threads, p, adapter_at),
            notices,
        )
    else:
        raise ValueError(f"backend {backend!r}: llama or torch")
    engine = OmniEngine(lm, encoder, codec, load_tokenizer(paths.lm_dir / "tokenizer.json"), options)
    engine.placements = {"omni_llm": lm_at, "omni_encoder": encoder_at, "omni_adapter": adapter_at, "snac": codec_at}
    engine.notices = tuple(notices)
    if warm:
        engine.warm()
    return engine


# Each start loads a part where the placement says and, on a GPU, runs it once, so what fails
# there at first use (missing kernels or libraries, memory) fails here, where the CPU can take over.


def start_encoder(path: Path, placement: Placement) -> WhisperEncoder:
    from models.omni.checkpoint import load_encoder

    encoder = load_encoder(path, placement.device, torch_dtype(placement))
    if placement.on_gpu:
        encoder.encode(np.zeros(RATE // 10, np.float32), 5, pad_to_30s=False)
    return encoder


def start_codec(folder: Path, placement: Placement):
    from models.omni.checkpoint import load_codec

    codec = load_codec(folder, placement.device, torch_dtype(placement))
    if placement.on_gpu:
        with torch.inference_mode():
            codec.decode([torch.zeros(1, n, dtype=torch.long, device=placement.device) for n in (1, 2, 4)])
    return codec


def start_llama(folder: Path, threads: int, placement: Placement, adapter: Placement) -> Backend:
    from models.omni.lm_backends import LlamaBackend

    return LlamaBackend(
        folder,
        threads=threads,
        gpu_layers=placement.gpu_layers,
        flash_attention=placement.flash_attention,
        adapter_device=adapter.device,
        adapter_dtype=torch_dtype(adapter),
    )
