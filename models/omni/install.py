"""Where an installed Mini-Omni's files are, and its converted GGUF folder, made on first use.

Conversion reads the 2.8 GB checkpoint once (about a minute on two cores at full size) and writes
`<data dir>/converted/mini-omni-<quant>/`. The folder records the SHA-256 of the checkpoint it
came from, so a re-installed or changed checkpoint is converted again.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from models.omni.assets import CODEC, ENCODER, LM
from models.omni.checkpoint import ENCODER_WEIGHTS, LM_WEIGHTS
from models.omni.convert import CONVERTER, META_FILE, QUANTS, convert
from models.omni.engine import OmniPaths
from models.registry import ModelStore
from models.registry.atomic import write_json
from models.registry.hashing import hash_file
from models.registry.stamp import read_stamps

log = logging.getLogger(__name__)


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
    return meta.get("source_sha256") == source_sha256 and meta.get("converter") == CONVERTER


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
        write_json(folder / META_FILE, {**meta, "source_sha256": source})
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
