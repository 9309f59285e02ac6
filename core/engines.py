"""The engines the companion can answer with: one list that the command line, the settings file
and the settings pane all read, how each is loaded from the installed models, and which engines
and compute devices can run on this machine. A new engine is one entry here (and its folder under
models/)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.registry import ModelStore

if TYPE_CHECKING:  # the engines' own modules load their native libraries: imported when used
    from models.cascade.chat import ChatConfig
    from models.cascade.engine import CascadeEngine
    from models.devices import Machine
    from models.engine import Engine


@dataclass(frozen=True)
class EngineInfo:
    name: str  # the settings value and the command line's --engine
    label: str  # what the settings pane shows
    help: str  # what the command line's help says
    in_settings: bool = True  # offered in the window (omni-torch is a reference for developers)


ENGINES: dict[str, EngineInfo] = {
    e.name: e
    for e in (
        EngineInfo(
            "cascade",
            "Cascade: Whisper, chat model, Piper",
            "the streaming cascade: Whisper, a chat model on llama.cpp, Piper",
        ),
        EngineInfo(
            "omni", "Mini-Omni (one speech model)", "Mini-Omni on llama.cpp (converted on first use, at --quant)"
        ),
        EngineInfo(
            "omni-torch",
            "Mini-Omni (torch reference)",
            "Mini-Omni's float32 torch reference (slow; for checking the llama.cpp one)",
            in_settings=False,
        ),
    )
}

SETTINGS_ENGINES = tuple(name for name, e in ENGINES.items() if e.in_settings)
DEFAULT_ENGINE = "cascade"
DEFAULT_ASR = "whisper-base"  # the cascade's speech recognizer unless the user picks another
DEFAULT_LLM = "qwen2.5-coder-0.5b-instruct-q4"  # the cascade's chat model unless the user picks another


def threads() -> int:
    """Threads for each model's own thread pool: the cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def load_engine(
    name: str,
    llm: str | None = None,
    quant: str = "q4_k_m",
    compute: str = "auto",
    store: ModelStore | None = None,
    asr: str | None = None,
) -> Engine:
    """The engine called `name`, loaded and warmed from the installed models."""
    if name == "cascade":
        return load_cascade(store, llm=llm, asr=asr, compute=compute)
    if name == "omni":
        return load_omni(store, quant=quant, compute=compute)
    if name == "omni-torch":
        return load_omni(store, backend="torch", compute=compute)
    raise ValueError(f"unknown engine {name!r} ({', '.join(ENGINES)})")


def load_cascade(
    store: ModelStore | None = None,
    llm: str | None = None,
    streaming: bool = True,
    chat_config: ChatConfig | None = None,
    compute: str = "auto",
    asr: str | None = None,
) -> CascadeEngine:
    """The streaming cascade (or, with streaming=False, the naive one the latency bench compares
    with). `compute`: the setting the device plan (models.devices) is made from."""
    from models.cascade.chat import ChatConfig
    from models.cascade.engine import CascadeEngine, CascadePaths
    from models.devices import plan_devices, probe_machine

    store = store or ModelStore()
    paths = CascadePaths(
        asr_dir=store.ensure_role(asr or DEFAULT_ASR, "asr"),
        llm_file=store.ensure_role(llm or DEFAULT_LLM, "llm") / "model.gguf",
        tts_dir=store.ensure("piper-joe-medium"),
    )
    return CascadeEngine.load(
        paths,
        chat_config or ChatConfig(threads=threads()),
        streaming=streaming,
        threads=threads(),
        plan=plan_devices(compute, probe_machine(torch=False)),  # the cascade has no torch model
    )


def load_omni(
    store: ModelStore | None = None, backend: str = "llama", quant: str = "q4_k_m", compute: str = "auto"
) -> Engine:
    """The Mini-Omni engine from the installed assets (converting for llama.cpp on first use),
    placed by the device plan for `compute`."""
    from models.devices import plan_devices
    from models.omni.engine import load_engine
    from models.omni.install import omni_paths

    store = store or ModelStore()
    return load_engine(omni_paths(store, backend, quant), backend, threads=threads(), plan=plan_devices(compute))


def compute_options(machine: Machine | None = None) -> dict[str, str | None]:
    """Each compute choice with None when some model would run on that GPU here, else why none
    would (each model's own reason, from its device plan)."""
    from models.devices import COMPUTE, plan_devices

    options: dict[str, str | None] = {}
    for compute in COMPUTE:
        plan = plan_devices(compute, machine)
        placements = [getattr(plan, name) for name in ("chat_llm", "omni_llm", "omni_encoder", "asr")]
        if compute in ("auto", "cpu") or any(p.on_gpu for p in placements):
            options[compute] = None
        else:
            options[compute] = "; ".join(dict.fromkeys(p.why for p in placements if p.why))
    return options


def engine_options(store: ModelStore | None = None) -> dict[str, str | None]:
    """Each engine with None when it can run here, else what is missing."""
    from models.omni.assets import CODEC, ENCODER, LM

    store = store or ModelStore()
    known = {a.id for a in store.assets()}
    omni = (LM, ENCODER, CODEC)
    unpinned = [a for a in omni if a not in known]
    reason: str | None
    if unpinned:
        reason = (
            "this version could not pin Mini-Omni's files; read their hashes from Hugging Face "
            f"first: voice-companion models pin {' '.join(unpinned)}"
        )
    else:
        missing = [a for a in omni if not store.status(a).verified]
        reason = f"install its models first: voice-companion models install {' '.join(missing)}" if missing else None
    return {"cascade": None, "omni": reason}  # SETTINGS_ENGINES, in order
