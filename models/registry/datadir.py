"""Where the user's models live on disk."""

import os
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
