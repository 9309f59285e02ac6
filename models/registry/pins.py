"""Hugging Face pins: which commit of a repo, and each file's size and SHA-256.

A built-in hub asset is catalogued only once every pin is known, because a guessed hash would
fail every install. Where this app could not read a pin (the hub was out of reach when it was
built), `voice-companion models pin ID` reads it on the user's machine, at the user's request:

- the repo's current commit (or the commit already known) and every file's size from the hub's
  API; for files stored with LFS the SHA-256 the hub computed at upload;
- files stored in git itself (small text: configs, tokenizers) are downloaded once and must hash
  to the git blob id the hub lists; their SHA-256 is then taken from the bytes;
- anything the app already knew (a file's hash or size, the commit) must agree, else nothing is
  pinned.

The result is saved in `<data dir>/models/hub_pins.json` and from then on the asset installs and
verifies like any built-in one: at that commit, against those hashes. This trusts the hub once,
at the moment the user chose, instead of never being able to install the model at all; the
command prints what it pinned so the user can compare it with the model's page.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from .atomic import make_private_dir, write_json
from .datadir import models_dir
from .errors import DownloadFailed, RegistryError
from .offline import online
from .userfile import load_or_recover, post_notice

PINS_FILE = "hub_pins.json"
_SCHEMA = 1
MAX_GIT_FILE = 50 * 2**20  # git-stored files are small text; anything bigger is not what we expect
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FilePin:
    name: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class RepoPin:
    repo_id: str
    revision: str | None  # 40-hex commit
    files: tuple[FilePin, ...]

    @property
    def complete(self) -> bool:
        return self.revision is not None and all(f.size is not None and f.sha256 for f in self.files)

    def to_json(self) -> dict:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    @classmethod
    def from_json(cls, data: dict) -> "RepoPin":
        pin = cls(
            str(data["repo_id"]),
            str(data["revision"]),
            tuple(FilePin(str(f["name"]), int(f["size"]), str(f["sha256"])) for f in data["files"]),
        )
        if not _HEX40.fullmatch(pin.revision or "") or not all(
            _HEX64.fullmatch(f.sha256 or "") and f.size is not None and f.size >= 0 for f in pin.files
        ):
            raise ValueError(f"{pin.repo_id}: a saved pin needs a 40-hex commit and 64-hex hashes")
        return pin


def read_pins(data_dir: Path) -> dict[str, RepoPin]:
    """The pins saved by `pin_from_hub`, by asset id. A damaged file is kept aside as
    `hub_pins.json.corrupt-TIME` with one notice (userfile.py), and the pins are then none: the
    assets it pinned ask to be pinned again."""
    none: dict[str, RepoPin] = {}
    pins, notice = load_or_recover(models_dir(data_dir) / PINS_FILE, _parse_pins, none)
    if notice:
        post_notice(notice + " (pin the models again: voice-companion models pin)")
    return pins


def _parse_pins(content: object) -> dict[str, RepoPin]:
    if not isinstance(content, dict) or not isinstance(content.get("assets"), dict):
        raise ValueError("not a pins file")
    return {str(asset_id): RepoPin.from_json(pin) for asset_id, pin in content["assets"].items()}


def save_pin(data_dir: Path, asset_id: str, pin: RepoPin) -> Path:
    path = models_dir(data_dir) / PINS_FILE
    pins = {**read_pins(data_dir), asset_id: pin}
    make_private_dir(path.parent)
    write_json(path, {"schema": _SCHEMA, "assets": {k: v.to_json() for k, v in sorted(pins.items())}})
    return path


def pin_from_hub(asset_id: str, known: RepoPin, endpoint: str | None = None) -> RepoPin:
    """Complete `known` from the hub (see the module's note); RegistryError says what disagreed."""
    from huggingface_hub import HfApi  # slow to import; only this command needs it

    where = f"{known.repo_id}@{(known.revision or 'main')[:12]}"
    try:
        with online():  # `models pin` is the user's request to ask the hub
            info = HfApi(endpoint=endpoint).model_info(
                known.repo_id, revision=known.revision or "main", files_metadata=True
            )
    except Exception as error:  # HTTP, connection and validation errors of many types
        raise DownloadFailed(f"the file list of {where}", str(error)) from error
    commit = info.sha or ""
    if not _HEX40.fullmatch(commit) or (known.revision and commit != known.revision):
        raise RegistryError(f"{asset_id}: the hub answered commit '{commit}' for {where}; not pinned")
    listed = {s.rfilename: s for s in info.siblings or ()}
    files = []
    for want in known.files:
        sibling = listed.get(want.name)
        if sibling is None or sibling.size is None:
            raise RegistryError(f"{asset_id}: {known.repo_id}@{commit[:12]} has no file {want.name}; not pinned")
        if sibling.lfs is not None:
            sha256 = sibling.lfs.sha256
        else:
            sha256 = _git_file_sha256(known.repo_id, want.name, commit, sibling, endpoint)
        got = FilePin(want.name, int(sibling.size), sha256)
        for field, mine, theirs in (("size", want.size, got.size), ("SHA-256", want.sha256, got.sha256)):
            if mine is not None and mine != theirs:
                raise RegistryError(
                    f"{asset_id}: the hub's {want.name} has {field} {theirs}, but this app "
                    f"knows {mine}; not pinned (is {known.repo_id} the right repo?)"
                )
        files.append(got)
    return replace(known, revision=commit, files=tuple(files))


def _git_file_sha256(repo_id: str, name: str, commit: str, sibling, endpoint: str | None) -> str:
    """Download a small git-stored file and check it against the git blob id the hub listed."""
    from huggingface_hub import hf_hub_download

    if sibling.size > MAX_GIT_FILE:
        raise RegistryError(f"{repo_id}/{name} is {sibling.size} bytes but not in LFS; not pinned")
    with tempfile.TemporaryDirectory() as staging:
        try:
            with online():
                path = hf_hub_download(
                    repo_id=repo_id, filename=name, revision=commit, local_dir=staging, endpoint=endpoint
                )
        except Exception as error:
            raise DownloadFailed(f"{name} from {repo_id}@{commit[:12]}", str(error)) from error
        content = Path(path).read_bytes()
    blob_id = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    if blob_id != sibling.blob_id:
        raise RegistryError(
            f"{repo_id}/{name} as downloaded does not match the hub's listing "
            f"(git blob {blob_id}, listed {sibling.blob_id}); not pinned"
        )
    return hashlib.sha256(content).hexdigest()
