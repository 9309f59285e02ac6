"""bench omni: the Mini-Omni engine at full size with random weights (speed does not depend on
weight values): decode steps per second of the text-guided batch of two for torch fp32 and the
GGUF at f16, q8_0, q4_k_m and q4_0 (with each one's logit error against f16); time from the end
of a 3 s input to the first audio sample;
encoder time (only the frames needed vs the original's 30 s window, with the features' error);
codec decode real-time factor; how long a cancelled reply keeps the engine busy; peak memory.
`device` (cpu, cuda, mps) places every part there as the app's device plan would for that
setting, and the result names each part's device and number format ("devices").

Each GGUF is measured in a process of its own, so its peak memory is its own. The converted
files are kept under <data dir>/bench/ and reused by later runs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.stats import peak_rss_mb, summary

log = logging.getLogger(__name__)

REAL_TIME_STEPS = 12000 / 1024  # 11.72 frames/s at 24 kHz: one decode step per frame
QUANTS = ("f16", "q8_0", "q4_k_m", "q4_0")
SEED = 1234
LOGITS_FILE = "bench-logits.npy"
INPUT_SECONDS = 3.0


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _full_config():
    from models.omni.config import OmniConfig

    return OmniConfig()


def _prompt_embeddings(backend, frames: int, rng: np.random.Generator):
    from models.omni import tokens as T

    features = rng.normal(0, 0.5, (frames, backend.config.n_embd)).astype(np.float32)
    a, b = T.text_guided_batch(frames)
    return [backend.embed(a.ids, features), backend.embed(b.ids, features)]


def _vm_hwm_mb() -> float:
    """This process's own peak resident memory (VmHWM; unlike getrusage's maxrss it is not
    inherited from the parent that started it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # no /proc (macOS, Windows): the peak from getrusage instead
        log.info("no VmHWM here", exc_info=True)
    return peak_rss_mb()


def measure_steps(backend, steps: int, repeats: int, sequences: int = 2) -> dict:
    """Decode steps per second: both sequences of the batch advance one position per step
    (sequences=1: after the text has ended, when only item 0 runs)."""
    from models.omni import tokens as T
    from models.omni.generate import step_ids

    rng = np.random.default_rng(0)
    prompt = _prompt_embeddings(backend, int(INPUT_SECONDS * 50) + 1, rng)
    per_step = []
    for _ in range(repeats):
        backend.start(prompt)
        audio = rng.integers(0, 4096, T.N_AUDIO)
        inputs = [backend.embed(step_ids(audio, 100))[0], backend.embed(step_ids(np.full(7, T.PAD_A), 100))[0]]
        if sequences == 1:
            inputs[1] = None
        t0 = time.perf_counter()
        for _ in range(steps):
            backend.step(inputs)
        per_step.append((time.perf_counter() - t0) / steps)
    rates = [1 / s for s in per_step]
    return {
        "steps_per_s": summary(rates, 2),
        "x_real_time": round(float(np.median(rates)) / REAL_TIME_STEPS, 2),
        "ms_per_step": summary([s * 1000 for s in per_step], 1),
    }


def measure_prefill(backend, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    prompt = _prompt_embeddings(backend, int(INPUT_SECONDS * 50) + 1, rng)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.start(prompt)
        times.append((time.perf_counter() - t0) * 1000)
    return {"positions": len(prompt[0]), "ms": summary(times, 1)}


def _random_encoder():
    import torch

    from models.omni.whisper_encoder import EncoderConfig, WhisperEncoder

    torch.manual_seed(SEED)
    encoder = WhisperEncoder(EncoderConfig()).eval().requires_grad_(False)
    with torch.no_grad():  # whisper-like scales: unit-ish activations through 12 layers
        for p in encoder.parameters():
            if p.ndim >= 2:
                p.normal_(0, 0.02)
    return encoder


def _random_codec():
    import torch
    from snac import SNAC

    from models.omni.checkpoint import SNAC_24KHZ

    torch.manual_seed(SEED)
    return SNAC(**SNAC_24KHZ).eval().requires_grad_(False)


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    voice = sum(
        np.sin(2 * np.pi * f * t * (1 + 0.05 * np.sin(3 * t))) / k for k, f in enumerate((140, 280, 420, 700), 1)
    )
    return (0.2 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + rng.normal(0, 0.01, len(t))).astype(np.float32)


def measure_encoder(encoder, repeats: int) -> dict:
    """Encoder time for a 3 s input, three ways, each against the original's features (30 s
    window, float32): the window in reduced precision (the engine's default), and only the
    frames needed."""
    import torch

    from models.omni.tokens import whisper_frames

    audio = _speechlike(INPUT_SECONDS)
    frames = whisper_frames(len(audio))
    ways = {
        "padded_30s_fp32": (True, False),
        "padded_30s_fast": (True, True),
        "needed_frames_fast": (False, True),
        "needed_frames_fp32": (False, False),
    }
    out: dict = {"frames": frames}
    features = {}
    for label, (padded, fast) in ways.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            features[label] = encoder.encode(audio, frames, padded, fast=fast)[0]
            times.append((time.perf_counter() - t0) * 1000)
        out[label] = {"ms": summary(times, 1)}
    reference = features["padded_30s_fp32"]
    for label in ways:
        difference = features[label] - reference
        out[label]["relative_error"] = round(
            float(torch.linalg.vector_norm(difference) / torch.linalg.vector_norm(reference)), 5
        )
        out[label]["min_frame_cosine"] = round(
            float(torch.nn.functional.cosine_similarity(features[label], reference, dim=-1).min()), 5
        )
    return out


def measure_codec(codec, repeats: int) -> dict:
    from models.omni.codec import SAMPLES_PER_FRAME, SeededCodec, StreamingDecoder

    seeded = SeededCodec(codec, 0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 4096, (48, 7))
    seconds = len(frames) * SAMPLES_PER_FRAME / seeded.rate
    streamed, whole, first = [], [], []
    for _ in range(repeats):
        decoder = StreamingDecoder(seeded)
        t0 = time.perf_counter()
        chunks = []
        for f in frames:
            chunk = decoder.push(f)
            if len(chunk) and not chunks:
                first.append((time.perf_counter() - t0) * 1000)
            if len(chunk):
                chunks.append(chunk)
        chunks.append(decoder.flush())
        streamed.append((time.perf_counter() - t0) / seconds)
        t0 = time.perf_counter()
        reference = seeded.decode(frames, 0)
        whole.append((time.perf_counter() - t0) / seconds)
    joined = np.concatenate(chunks)
    error = float(np.abs(joined - reference).max() / np.abs(reference).max())
    return {
        "audio_seconds": round(seconds, 2),
        "streamed_rtf": summary(streamed, 3),
        "whole_rtf": summary(whole, 3),
        "first_chunk_ms": summary(first, 1),
        "streamed_vs_whole_max_error": round(error, 6),
    }


def measure_first_audio(engine, turns: int) -> dict:
    """From the end of a 3 s input (the turn handed to the engine) to its first audio sample."""
    from models.engine import CancelToken, ReplyAudio, StageTime, Style, UserTurn

    audio = _speechlike(INPUT_SECONDS, 1)
    firsts, stages = [], {}
    for _ in range(turns):
        t0 = time.perf_counter()
        token = CancelToken()
        for event in engine.respond(UserTurn(audio=audio), Style(), token):
            if isinstance(event, StageTime):
                stages.setdefault(event.stage, []).append(event.seconds * 1000)
            if isinstance(event, ReplyAudio):
                firsts.append((time.perf_counter() - t0) * 1000)
                token.cancel()
                break
        with engine.lease:  # its worker has let go
            pass
    return {"first_audio_ms": summary(firsts, 1), "stages_ms": {k: summary(v, 1) for k, v in stages.items()}}


def measure_cancel_wait(engine, delays=(0.2, 0.6, 1.0, 1.4, 1.8)) -> dict:
    """A reply cancelled `delay` s after it began (in its encoder, its prefill or its first
    steps, as when the user goes on after a pause): how long its worker stays busy, which is
    what the next reply waits for."""
    from models.engine import CancelToken, Style, UserTurn

    audio = _speechlike(INPUT_SECONDS, 2)
    waits = {}
    for delay in delays:
        token = CancelToken()
        events = engine.respond(UserTurn(audio=audio), Style(), token)
        reader = threading.Thread(target=lambda: sum(1 for _ in events))
        reader.start()
        time.sleep(delay)
        t0 = time.perf_counter()
        token.cancel()
        with engine.lease:  # what the next reply waits for
            pass
        waits[delay] = (time.perf_counter() - t0) * 1000
        reader.join()
    return {
        "wait_ms": summary(list(waits.values()), 1),
        "by_delay_ms": {f"{d:.1f}s": round(w, 1) for d, w in waits.items()},
    }


# ---- the worker: one GGUF in a process of its own ----------------------------------------------


COMPUTE = {"cpu": "cpu", "cuda": "cuda", "mps": "metal"}  # --device -> the compute setting


def bench_plan(device: str):
    """The device plan the bench runs by; refuses (one line) a device no part can use here."""
    from models.devices import plan_devices

    plan = plan_devices(COMPUTE[device])
    if device != "cpu" and not any(p.on_gpu for p in (plan.omni_llm, plan.omni_encoder, plan.snac)):
        raise ValueError(
            f"bench omni --device {device}: nothing can run there ({plan.omni_llm.why}; {plan.omni_encoder.why})"
        )
    return plan


def placed(placement, quant: str | None = None) -> dict:
    """What a result says of where a part ran and in which number format."""
    out = {"device": placement.device, "number_format": quant or placement.number_format}
    if placement.why:
        out["why"] = placement.why
    if placement.gpu_layers:
        out["gpu_layers"] = "all" if placement.gpu_layers < 0 else placement.gpu_layers
    if placement.flash_attention:
        out["flash_attention"] = True
    return out


def _place(module, placement):
    from models.devices import torch_dtype

    return module.to(placement.device, torch_dtype(placement))


def worker(folder: str, full: bool, turns: int, device: str = "cpu") -> dict:
    import torch
    from tokenizers import Tokenizer

    from models.omni.checkpoint import small_tokenizer_json
    from models.omni.engine import OmniEngine, OmniOptions
    from models.omni.lm_backends import LlamaBackend

    torch.set_num_threads(_threads())
    plan = bench_plan(device)
    result: dict = {}
    t0 = time.perf_counter()
    backends = {mode: None for mode in ("separate", "joint")}
    for mode in backends:
        backend = LlamaBackend(
            Path(folder),
            threads=_threads(),
            step_mode=mode,
            gpu_layers=plan.omni_llm.gpu_layers,
            flash_attention=plan.omni_llm.flash_attention,
            adapter_device=plan.omni_adapter.device,
            adapter_dtype=getattr(torch, plan.omni_adapter.number_format),
        )
        if mode == "separate":
            result["load_s"] = round(time.perf_counter() - t0, 2)
            # The logits after a prompt, for the quantization error against f16 (see `run`).
            logits = backend.start(_prompt_embeddings(backend, int(INPUT_SECONDS * 50) + 1, np.random.default_rng(0)))
            np.save(Path(folder) / LOGITS_FILE, np.stack(logits))
        result[f"decode_{mode}"] = measure_steps(backend, steps=24, repeats=max(3, turns))
        backends[mode] = backend
        if mode == "separate":
            result["decode_after_text_ends"] = measure_steps(backend, steps=24, repeats=max(3, turns), sequences=1)
            result["prefill"] = measure_prefill(backend, repeats=3)
        if mode == "joint":
            backend.close()
    result["peak_rss_mb_decoding"] = _vm_hwm_mb()
    result["devices"] = {"omni_llm": placed(plan.omni_llm, backends["separate"].quant)}
    if full:
        # The engine's own path first, so its peak memory is what a user's turn costs; the
        # component benches after it decode more at once than the engine ever does.
        encoder, codec = _place(_random_encoder(), plan.omni_encoder), _place(_random_codec(), plan.snac)
        result["devices"] |= {
            "omni_encoder": placed(plan.omni_encoder),
            "omni_adapter": placed(plan.omni_adapter),
            "snac": placed(plan.snac),
        }
        tokenizer = Tokenizer.from_str(small_tokenizer_json())
        engine = OmniEngine(backends["separate"], encoder, codec, tokenizer, OmniOptions())
        engine.warm()
        result["engine_padded_30s"] = measure_first_audio(engine, turns)
        engine.options = OmniOptions(pad_to_30s=False)
        result["engine_needed_frames"] = measure_first_audio(engine, turns)
        engine.options = OmniOptions()
        result["cancelled_reply_holds_the_next_for"] = measure_cancel_wait(engine)
        result["peak_rss_mb_engine"] = _vm_hwm_mb()
        result["encoder"] = measure_encoder(encoder, repeats=3)
        result["codec"] = measure_codec(codec, repeats=3)
    result["peak_rss_mb"] = _vm_hwm_mb()
    if device == "cuda":
        result["gpu_peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _run_worker(folder: Path, full: bool, turns: int, device: str) -> dict:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "bench.omni", str(folder), "1" if full else "0", str(turns), device],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the run ------------------------------------------------------------------------------


def _converted(root: Path, model, quant: str) -> tuple[Path, float | None]:
    from models.omni.convert import CONVERTER, META_FILE, convert

    folder = root / f"omni-{quant}"
    try:
        meta = json.loads((folder / META_FILE).read_text())
        if meta.get("bench_seed") == SEED and meta.get("converter") == CONVERTER and (folder / "model.gguf").is_file():
            return folder, None
    except FileNotFoundError:
        log.info("converting the bench's %s file (not converted yet)", quant)
    except (OSError, ValueError):
        log.warning("the bench's converted %s is unreadable; converting again", quant, exc_info=True)
    t0 = time.perf_counter()
    convert(model, folder, quant, threads=_threads())
    seconds = time.perf_counter() - t0
    from models.registry.atomic import write_json

    meta = json.loads((folder / META_FILE).read_text())
    write_json(folder / META_FILE, {**meta, "bench_seed": SEED})
    return folder, round(seconds, 1)


def _logit_error(logits: np.ndarray, reference: np.ndarray) -> dict:
    from models.omni import tokens as T

    same = [
        np.argmax(logits[i][slice(*T.stream_columns(s))]) == np.argmax(reference[i][slice(*T.stream_columns(s))])
        for i in range(len(reference))
        for s in range(T.N_STREAMS)
    ]
    return {
        "relative_error": round(float(np.linalg.norm(logits - reference) / np.linalg.norm(reference)), 4),
        "top_token_agreement": round(float(np.mean(same)), 2),
    }


def _best(figures: dict) -> float:
    return max(figures["decode_separate"]["x_real_time"], figures["decode_joint"]["x_real_time"])


def run(turns: int = 5, device: str = "cpu", quants: tuple[str, ...] = QUANTS) -> dict:
    """quants: the files measured (f16 is the reference of the others' logit error); the engine
    and its parts are measured on q4_k_m and q4_0 where they are among them."""
    import torch

    from models.omni.checkpoint import random_lm
    from models.omni.lm_backends import TorchBackend
    from models.registry.datadir import default_data_dir

    unknown = set(quants) - set(QUANTS)
    if unknown:
        raise ValueError(f"bench omni --quants: {', '.join(sorted(unknown))}; choose from {', '.join(QUANTS)}")
    plan = bench_plan(device)
    torch.set_num_threads(_threads())
    root = default_data_dir() / "bench"
    t0 = time.perf_counter()
    model = random_lm(_full_config(), SEED)
    result: dict = {
        "bench": "omni",
        "device": device,
        "device_plan": plan.to_json(),
        "threads": _threads(),
        "cpu_count": os.cpu_count(),
        "input_seconds": INPUT_SECONDS,
        "real_time_steps_per_s": round(REAL_TIME_STEPS, 2),
        "model_build_s": round(time.perf_counter() - t0, 1),
        "conversion_s": {},
    }
    folders = {}
    for quant in quants:
        folders[quant], seconds = _converted(root, model, quant)
        result["conversion_s"][quant] = seconds if seconds is not None else "reused"
    for quant in quants:
        result[f"gguf_{quant}"] = _run_worker(
            folders[quant], full=quant in ("q4_k_m", "q4_0"), turns=turns, device=device
        )
        result[f"gguf_{quant}"]["file_mb"] = round((folders[quant] / "model.gguf").stat().st_size / 1e6, 1)
    # Quantization error: each file's logits after the same prompt against the f16 file's,
    # relative (norm of the difference over the norm), and how often each stream's top token agrees.
    reference = np.load(folders["f16"] / LOGITS_FILE) if "f16" in folders else None
    for quant in [q for q in quants if q != "f16" and reference is not None]:
        try:
            logits = np.load(folders[quant] / LOGITS_FILE)
        except OSError:
            log.warning("no logits from the %s file; its error is not measured", quant, exc_info=True)
            continue
        result[f"gguf_{quant}"]["logits_vs_f16"] = _logit_error(logits, reference)
    backend = TorchBackend(model)
    result["torch_fp32"] = {
        "devices": {"omni_llm": {"device": "cpu", "number_format": "float32"}},
        "decode_batch_of_two": measure_steps(backend, steps=8, repeats=3),
        "prefill": measure_prefill(backend, repeats=1),
    }
    result["peak_rss_mb_main_process"] = peak_rss_mb()
    q4 = result.get("gguf_q4_k_m", {"error": "not measured"})
    if "error" not in q4:
        fast = result.get("gguf_q4_0", {"error": "not measured"})
        result["targets"] = {
            "q4_k_m_x_real_time >= 3 (batch of two)": _best(q4),
            "q4_0_x_real_time >= 3 (batch of two)": _best(fast) if "error" not in fast else None,
            "q4_k_m_x_real_time after the text ends": q4["decode_after_text_ends"]["x_real_time"],
            "first_audio_ms <= 600 (30 s encoder window, the default)": q4["engine_padded_30s"]["first_audio_ms"].get(
                "median"
            ),
            "first_audio_ms <= 600 (needed frames only)": q4["engine_needed_frames"]["first_audio_ms"].get("median"),
            "q4_0 first_audio_ms (30 s window)": fast.get("engine_padded_30s", {})
            .get("first_audio_ms", {})
            .get("median"),
            "codec_streamed_rtf <= 0.3": q4["codec"]["streamed_rtf"].get("median"),
            "a cancelled reply holds up the next, ms (max)": q4["cancelled_reply_holds_the_next_for"]["wait_ms"].get(
                "max"
            ),
            "peak_rss_mb <= 2048 (engine: load, warm-up, turns)": q4["peak_rss_mb_engine"],
        }
    return result


if __name__ == "__main__":  # the worker process: its own log records and crash reports, beside the app's
    from core.logs import setup_logging
    from models.registry.datadir import default_data_dir

    setup_logging(default_data_dir())
    print(json.dumps(worker(sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4])))
