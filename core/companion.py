"""Loads the default stack from the model registry: the voice activity model and an engine."""
from __future__ import annotations

import logging
import functools
import os

import numpy as np

from core.audio.vad import SileroVad
from core.engines import DEFAULT_ASR
from core.turns import TurnConfig, TurnDetector
from models.cascade.chat import ChatConfig
from models.cascade.engine import CascadeEngine, CascadePaths
from models.registry import ModelStore

log = logging.getLogger(__name__)

DEFAULT_LLM = "qwen2.5-coder-0.5b-instruct-q4"


def threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def compute_options(machine=None) -> dict[str, str | None]:
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
    if unpinned:
        reason = ("this version could not pin Mini-Omni's files; read their hashes from Hugging Face "
                  f"first: voice-companion models pin {' '.join(unpinned)}")
    else:
        missing = [a for a in omni if not store.status(a).verified]
        reason = f"install its models first: voice-companion models install {' '.join(missing)}" if missing else None
    return {"cascade": None, "omni": reason}  # core.engines.SETTINGS_ENGINES, in order


def load_turn_judge(store: ModelStore | None = None):
    """A judge of whether a pause ends the turn (Smart Turn v3.2), on a thread of its own; the
    model is loaded once per process and the session that gets the judge closes it."""
    from core.audio.turn_end import TurnJudge

    return TurnJudge(_smart_turn((store or ModelStore()).ensure("smart-turn-v3.2") / "smart-turn.onnx"))


@functools.lru_cache(maxsize=2)
def _smart_turn(path):
    from core.audio.turn_end import SmartTurn
    from models.devices import plan_devices

    return SmartTurn(path, providers=plan_devices("auto").turn_model.providers)


def load_vad(store: ModelStore | None = None) -> SileroVad:
    from models.devices import plan_devices

    store = store or ModelStore()
    return SileroVad(store.ensure("silero-vad") / "silero_vad.onnx", providers=plan_devices("auto").vad.providers)


def load_cascade(store: ModelStore | None = None, llm: str | None = None, streaming: bool = True,
                 chat_config: ChatConfig | None = None, compute: str = "auto", asr: str | None = None) -> CascadeEngine:
    """`compute`: the setting the device plan (models.devices) is made from."""
    from models.devices import plan_devices

    store = store or ModelStore()
    paths = CascadePaths(
        asr_dir=store.ensure_role(asr or DEFAULT_ASR, "asr"),
        llm_file=store.ensure_role(llm or DEFAULT_LLM, "llm") / "model.gguf",
        tts_dir=store.ensure("piper-joe-medium"),
    )
    return CascadeEngine.load(paths, chat_config or ChatConfig(threads=threads()), streaming=streaming,
                              threads=threads(), plan=plan_devices(compute))


def load_omni(store: ModelStore | None = None, backend: str = "llama", quant: str = "q4_k_m",
              compute: str = "auto"):
    """The Mini-Omni engine from the installed assets (converting for llama.cpp on first use),
    placed by the device plan for `compute`."""
    from models.devices import plan_devices
    from models.omni.engine import load_engine
    from models.omni.install import omni_paths

    store = store or ModelStore()
    return load_engine(omni_paths(store, backend, quant), backend, threads=threads(), plan=plan_devices(compute))


def has_speech(vad: SileroVad, audio: np.ndarray, config: TurnConfig = TurnConfig()) -> bool:
    """Whether a whole recording holds at least one turn's worth of speech."""
    if len(audio) == 0 or float(np.max(np.abs(audio))) < 1e-3:  # below -60 dBFS: silence
        return False
    vad.reset()
    detector = TurnDetector(config)
    try:
        for prob in vad.push(audio):
            if detector.push(prob):
                return True
        return False
    finally:
        vad.reset()


def engine_voice_profile(engine: CascadeEngine, store: ModelStore | None = None):
    """The packaged voice's own profile (what voice matching maps from), measured once (~5 s of
    CPU) and kept beside the voice in the user's data folder."""
    from core.style.voice_match import VoiceProfile, profile_of_voice
    from models.registry.atomic import make_private_dir, write_json
    from models.registry.userfile import DamagedFile, parse_json

    store = store or ModelStore()
    cache = store.root / "voices" / "piper-joe-medium.profile.json"
    try:
        return parse_json(cache, VoiceProfile.from_json)
    except FileNotFoundError:
        log.info("measuring the voice's profile once, into %s", cache)
    except (OSError, DamagedFile):  # measured from the packaged voice: nothing of the user's is lost
        log.warning("the voice profile %s is unreadable; measuring it again", cache, exc_info=True)
    profile = profile_of_voice(engine.tts)
    make_private_dir(cache.parent)
    write_json(cache, profile.to_json())
    return profile
