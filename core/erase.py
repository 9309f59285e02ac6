"""Erasing what the user asks to erase: one voice clip, the conversation history, or everything.

Each returns the names of the files it removed. What each removes:
- `delete_clip`: the clip, its stored profile (and a damaged copy of it kept aside); every user
  preset that names the clip loses its voice reference (and the profile copied into it); a
  `voice_reference` setting that names it is cleared.
- `clear_history`: history.json and any damaged copy kept aside.
- `forget_everything`: settings, history, the user's presets, every voice clip and profile, the
  logs and crash reports, damaged copies kept aside, temp files. The models stay (they are the
  app's, not the user's, and take long to install again).
The running app's copy in memory is the caller's to clear (core/app_backend.py does).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from core.logs import CRASH_FILE, LOG_FILE, log_dir
from core.settings import UserFiles
from core.style import voice_clips
from core.style.presets import PresetError, PresetStore, read_preset

log = logging.getLogger(__name__)


def clear_history(files: UserFiles) -> list[str]:
    return _remove([files.history_file, *_kept_aside(files.history_file)])


def delete_clip(files: UserFiles, name: str) -> list[str]:
    """KeyError when there is no clip called `name` in the voices folder."""
    removed = voice_clips.delete_clip(files.voices, name)
    store = PresetStore(files.presets)
    for path in sorted(files.presets.glob("*.json")) if files.presets.is_dir() else []:
        try:
            preset = read_preset(path)
        except PresetError:  # left for the start-up check to keep aside; it cannot be rewritten
            log.warning("preset file %s is damaged; not checked for the clip %s", path, name, exc_info=True)
            continue
        if preset.voice_reference is not None and preset.voice_reference.clip == name:
            store.save(replace(preset, voice_reference=None))
            log.info("preset %r no longer names the deleted clip %s", preset.name, name)
    settings, _notice = files.load_settings()
    if settings.voice_reference == name:
        files.save_settings(replace(settings, voice_reference=None))
    return removed


def forget_everything(files: UserFiles) -> list[str]:
    """Everything of the user's in the data folder but the models (see the module's note)."""
    root = files.root
    doomed = [
        files.settings_file,
        files.history_file,
        *_kept_aside(files.settings_file),
        *_kept_aside(files.history_file),
    ]
    for folder in (files.presets, files.voices):
        if folder.is_dir():
            doomed += [p for p in folder.iterdir() if p.is_file() or p.is_symlink()]
    if root.is_dir():
        doomed += list(root.glob(".*.tmp"))
    removed = _remove(doomed)
    removed += _clear_logs(log_dir(root))
    log.info("forgot everything of the user's in %s (%d files)", root, len(removed))
    return removed


def _kept_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*")) if path.parent.is_dir() else []


def _remove(paths: list[Path]) -> list[str]:
    removed = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path.name)
    return removed


def _clear_logs(folder: Path) -> list[str]:
    """Delete every log and crash report. The files this process has open (the log and crash.log)
    are emptied instead: their handles append to them and keep working."""
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if path.name in (LOG_FILE, CRASH_FILE):
            os.truncate(path, 0)
        else:
            path.unlink()
        removed.append(path.name)
    return removed
