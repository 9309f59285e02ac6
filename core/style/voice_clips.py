"""The user's voice-matching reference clips: checked, kept in the voices folder with their
measured profile beside them, so a preset can name a clip and the profile is not measured twice.

A clip is a recording of someone's voice: it lives only in the private voices folder, under a name
no other clip has, and `delete_clip` removes it with its profile."""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.audio.io import load_voice, save_wav
from core.style.voice_match import VoiceProfile, analyze_reference
from models.registry.atomic import PRIVATE_FILE, make_private_dir, write_json
from models.registry.userfile import DamagedFile, keep_aside, parse_json, post_notice
from core.audio.format import RATE

if TYPE_CHECKING:
    from models.cascade.engine import CascadeEngine
    from models.registry import ModelStore

log = logging.getLogger(__name__)

PROFILE_SUFFIX = ".profile.json"


def _reserve_clip_name(folder: Path, label: str) -> str:
    """A new clip name, `LABEL-TIME.wav` or `LABEL-TIME-N.wav`, reserved by creating the (empty)
    file exclusively: two clips made within the same second, even by two threads, never share one."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-")[:40] or "voice"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        name = f"{stem}-{stamp}.wav" if n == 1 else f"{stem}-{stamp}-{n}.wav"
        try:
            os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(f"no free clip name for {stem}-{stamp} in {folder}")


def add_clip(folder: Path, audio: np.ndarray, label: str = "voice") -> tuple[str, VoiceProfile]:
    """Check a 16 kHz clip (ReferenceError says why it cannot be used), keep it and its profile;
    returns the clip's file name. A failed write leaves no clip behind."""
    profile = analyze_reference(audio, RATE)
    make_private_dir(folder)
    name = _reserve_clip_name(folder, label)
    try:
        save_wav(folder / name, audio, RATE)
        write_json(folder / (name + PROFILE_SUFFIX), profile.to_json())
    except BaseException:
        (folder / name).unlink(missing_ok=True)
        raise
    return name, profile


def clip_names(folder: Path) -> list[str]:
    """The user's clips in `folder`, oldest name first."""
    return sorted(p.name for p in folder.glob("*.wav")) if folder.is_dir() else []


def delete_clip(folder: Path, name: str) -> list[str]:
    """Delete the clip `name` and its stored profile; returns the files removed. KeyError when
    there is no such clip (a name with a path in it never is one)."""
    if Path(name).name != name or not name.endswith(".wav") or not (folder / name).is_file():
        raise KeyError(
            f"no voice clip named {name!r}"
            + (f"; there are: {', '.join(clip_names(folder))}" if clip_names(folder) else "")
        )
    removed = []
    for path in [
        folder / name,
        folder / (name + PROFILE_SUFFIX),
        *folder.glob(f"{glob.escape(name + PROFILE_SUFFIX)}.corrupt-*"),
    ]:
        if path.exists():
            path.unlink()
            removed.append(path.name)
    log.info("deleted the voice clip %s (%d files)", name, len(removed))
    return removed


def import_clip(folder: Path, source: Path) -> tuple[str, VoiceProfile]:
    """A clip from a file the user picked (any format soundfile reads); AudioInputError or
    ReferenceError on bad input."""
    return add_clip(folder, load_voice(source, max_seconds=60), Path(source).stem)


def clip_profile(folder: Path, name: str) -> VoiceProfile:
    """The stored profile of a clip, measured again (and stored) if it is missing or damaged; a
    damaged one is kept aside as `NAME.corrupt-TIME` first."""
    cached = folder / (name + PROFILE_SUFFIX)
    try:
        return parse_json(cached, VoiceProfile.from_json)
    except FileNotFoundError:
        log.info("measuring the voice clip %s (no stored profile)", name)
    except DamagedFile as exc:
        try:
            kept = f"kept as {keep_aside(cached).name}"
        except OSError as error:
            kept = f"could not be moved aside: {error.strerror or error}"
        log.warning("the stored profile of %s is damaged (%s); measuring it again", name, kept, exc_info=True)
        post_notice(f"the voice profile of {name} was damaged ({exc}; {kept}); it is measured again")
    except OSError:
        log.warning("the stored profile of %s is unreadable; measuring it again", name, exc_info=True)
    profile = analyze_reference(load_voice(folder / name, max_seconds=60), RATE)
    write_json(cached, profile.to_json())
    return profile


def engine_voice_profile(engine: CascadeEngine, store: ModelStore | None = None) -> VoiceProfile:
    """The packaged voice's own profile (what voice matching maps from), measured once (seconds of
    CPU) and kept beside the voice in the user's data folder."""
    from core.style.voice_match import profile_of_voice
    from models.registry import ModelStore

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
