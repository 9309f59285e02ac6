"""Where an installed Mini-Omni's files are, and its converted GGUF folder, made on first use.

Conversion reads the 2.8 GB checkpoint once (about a minute on two cores at full size) and writes
`<data dir>/converted/mini-omni-<quant>/`. The folder records the SHA-256 of the checkpoint it
came from, so a re-installed or changed checkpoint is converted again, and the SHA-256 of each file
the conversion wrote, checked before every load like any model's (a stamp of size and mtime spares
re-reading unchanged files): a converted file that changed is converted again, never loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from models.omni.assets import CODEC, ENCODER, LM
from models.omni.checkpoint import ENCODER_WEIGHTS, LM_WEIGHTS
from models.omni.convert import ADAPTER_FILE, CONVERTER, EMBEDDINGS_FILE, GGUF_FILE, META_FILE, QUANTS, convert
from models.omni.engine import OmniPaths
from models.registry import ModelStore
from models.registry.atomic import write_json
from models.registry.hashing import hash_file
from models.registry.stamp import FileStamp, read_stamps, write_stamps

log = logging.getLogger(__name__)

CONVERTED_FILES = (GGUF_FILE, EMBEDDINGS_FILE, ADAPTER_FILE)


def converted_dir(store: ModelStore, quant: str) -> Path:
    return store.root / "converted" / f"{LM}-{quant}"


def _source_hash(lm_dir: Path) -> str:
    stamp = read_stamps(lm_dir).get(LM_WEIGHTS)  # the store checked it moments ago
    return stamp.sha256 if stamp is not None else hash_file(lm_dir / LM_WEIGHTS)


def is_current(folder: Path, source_sha256: str) -> bool:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:  # not converted yet
        return False
    except (OSError, ValueError):
        log.warning("%s is unreadable; converting again", folder / META_FILE, exc_info=True)
        return False
    if meta.get("source_sha256") != source_sha256 or meta.get("converter") != CONVERTER:
        return False
    try:
        intact = isinstance(meta.get("files"), dict) and converted_hashes(folder) == meta["files"]
    except FileNotFoundError:
        return False
    if not intact:
        log.warning("a converted file in %s is not the one the conversion wrote; converting again", folder)
    return intact


def converted_hashes(folder: Path) -> dict[str, str]:
    """The SHA-256 of each converted file, from the folder's stamps where they still describe it."""
    stamps = read_stamps(folder)
    before = dict(stamps)
    for name in CONVERTED_FILES:
        stat = (folder / name).stat()
        if name not in stamps or not stamps[name].describes(stat):
            stamps[name] = FileStamp(stat.st_size, stat.st_mtime_ns, hash_file(folder / name))
    if stamps != before:
        write_stamps(folder, stamps)
    return {name: stamps[name].sha256 for name in CONVERTED_FILES}


def ensure_converted(store: ModelStore, quant: str, force: bool = False, threads: int = 0) -> Path:
    """The converted folder for `quant`, converting the installed checkpoint when needed."""
    from models.omni.checkpoint import load_lm

    if quant not in QUANTS:
        raise ValueError(f"--quant {quant}: choose one of {', '.join(QUANTS)}")
    lm_dir = store.path(LM)
    folder = converted_dir(store, quant)
    source = _source_hash(lm_dir)
    if force or not is_current(folder, source):
        convert(load_lm(lm_dir), folder, quant, threads)
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        write_json(folder / META_FILE, {**meta, "source_sha256": source, "files": converted_hashes(folder)})
    return folder


def omni_paths(store: ModelStore, backend: str = "llama", quant: str = "q4_k_m") -> OmniPaths:
    """Every file the engine needs, checked by the store; converts for llama.cpp if needed."""
    lm_dir = store.path(LM)
    return OmniPaths(
        lm_dir=lm_dir,
        encoder_file=store.path(ENCODER) / ENCODER_WEIGHTS,
        codec_dir=store.path(CODEC),
        converted_dir=ensure_converted(store, quant) if backend == "llama" else None,
    )
