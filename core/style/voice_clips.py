"""The user's voice-matching reference clips: checked, kept in the voices folder with their
measured profile beside them, so a preset can name a clip and the profile is not measured twice."""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from core.audio.io import load_voice, save_wav
from core.style.voice_match import VoiceProfile, analyze_reference
from models.registry.atomic import write_json

log = logging.getLogger(__name__)

RATE = 16000


def _clip_name(label: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-")[:40] or "voice"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.wav"


def add_clip(folder: Path, audio: np.ndarray, label: str = "voice") -> tuple[str, VoiceProfile]:
    """Check a 16 kHz clip (ReferenceError says why it cannot be used), keep it and its profile;
    returns the clip's file name."""
    profile = analyze_reference(audio, RATE)
    folder.mkdir(parents=True, exist_ok=True)
    name = _clip_name(label)
    save_wav(folder / name, audio, RATE)
    write_json(folder / (name + ".profile.json"), profile.to_json())
    return name, profile


def import_clip(folder: Path, source: Path) -> tuple[str, VoiceProfile]:
    """A clip from a file the user picked (any format soundfile reads); AudioInputError or
    ReferenceError on bad input."""
    return add_clip(folder, load_voice(source, max_seconds=60), Path(source).stem)


def clip_profile(folder: Path, name: str) -> VoiceProfile:
    """The stored profile of a clip, measured again (and stored) if it is missing or damaged."""
    cached = folder / (name + ".profile.json")
    try:
        return VoiceProfile.from_json(json.loads(cached.read_text()))
    except FileNotFoundError:
        log.info("measuring the voice clip %s (no stored profile)", name)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("the stored profile of %s is unreadable; measuring it again", name, exc_info=True)
    profile = analyze_reference(load_voice(folder / name, max_seconds=60), RATE)
    write_json(cached, profile.to_json())
    return profile
