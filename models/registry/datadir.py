"""Where the user's models live on disk."""

import os
import sys
from pathlib import Path

import platformdirs

# Tests and CI point this at a scratch folder so they never touch the user's real models.
DATA_DIR_ENV = "VOICE_COMPANION_DATA"


def default_data_dir() -> Path:
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir("voice-companion"))


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def bundled_models_dir() -> Path | None:
    """The read-only models folder inside an app bundle (PyInstaller's `_internal/models`), where
    the default models travel so that a bundle works offline from its first launch; None when
    running from a checkout or a wheel."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is None:
        return None
    folder = Path(bundle) / "models"
    return folder if folder.is_dir() else None
