"""The engines the companion can answer with: one list that the command line, the settings file
and the settings pane all read. A new engine is one entry here (and its folder under models/)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineInfo:
    name: str  # the settings value and the command line's --engine
    label: str  # what the settings pane shows
    help: str  # what the command line's help says
    in_settings: bool = True  # offered in the window (omni-torch is a reference for developers)


ENGINES: dict[str, EngineInfo] = {e.name: e for e in (
    EngineInfo("cascade", "Cascade: Whisper, chat model, Piper",
               "the streaming cascade: Whisper, a chat model on llama.cpp, Piper"),
    EngineInfo("omni", "Mini-Omni (one speech model)",
               "Mini-Omni on llama.cpp (converted on first use, at --quant)"),
    EngineInfo("omni-torch", "Mini-Omni (torch reference)",
               "Mini-Omni's float32 torch reference (slow; for checking the llama.cpp one)", in_settings=False),
)}

SETTINGS_ENGINES = tuple(name for name, e in ENGINES.items() if e.in_settings)
DEFAULT_ENGINE = "cascade"
DEFAULT_ASR = "whisper-base"  # the cascade's speech recognizer unless the user picks another


def load_engine(name: str, llm: str | None = None, quant: str = "q4_k_m", compute: str = "auto", store=None,
                asr: str | None = None):
    """The engine called `name`, loaded and warmed from the installed models."""
    from core.companion import load_cascade, load_omni

    if name == "cascade":
        return load_cascade(store, llm=llm, asr=asr, compute=compute)
    if name == "omni":
        return load_omni(store, quant=quant, compute=compute)
    if name == "omni-torch":
        return load_omni(store, backend="torch", compute=compute)
    raise ValueError(f"unknown engine {name!r} ({', '.join(ENGINES)})")
