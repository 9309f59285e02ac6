"""Re-store a CTranslate2 Whisper model with int8 weights, as CTranslate2's own converter does.

A model pack ships Whisper in float16; the app runs it in int8 on the CPU, so storing it in int8
halves its size on disk and in the app bundle and spares the conversion at every load. The
weights go through `ctranslate2.specs` (`optimize("int8")`, `save`), so which variables are
quantized, and how, is CTranslate2's decision; this module only reads the saved file back into
a spec. The result is deterministic, so it is pinned by SHA-256 like any other model file.

model.bin layout (CTranslate2 binary version 6, little-endian): u32 version, string spec name,
u32 spec revision, u32 variable count, then per variable: string name, u8 rank, u32 per
dimension, u8 dtype id, u32 byte count, the bytes; then u32 alias count and (alias, target)
string pairs. A string is a u16 length that counts a trailing NUL, then the UTF-8 bytes and NUL.
"""

import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RegistryError

BINARY_VERSION = 6
# The CTranslate2 whose converter made the bytes pinned in the catalogue.
PINNED_WITH = "4.8.5"
# CTranslate2's DataType enum order (include/ctranslate2/types.h).
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


@dataclass(frozen=True)
class Ct2Model:
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]  # in file order
    aliases: dict[str, str]  # alias -> the variable it shares


def read_model(raw: bytes) -> Ct2Model:
    """Parse model.bin's bytes; the arrays are views of `raw`."""
    data = memoryview(raw)
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def string() -> str:
        nonlocal pos
        size = take("H")
        text = bytes(data[pos : pos + size - 1]).decode("utf-8")
        pos += size
        return text

    try:
        version = take("I")
        if version != BINARY_VERSION:
            raise RegistryError(f"CTranslate2 model format {version}, expected {BINARY_VERSION}")
        spec_name, revision = string(), take("I")
        variables = {}
        for _ in range(take("I")):
            name = string()
            shape = [take("I") for _ in range(take("B"))]
            dtype = np.dtype(DTYPES[take("B")])
            size = take("I")
            variables[name] = np.frombuffer(data, dtype, size // dtype.itemsize, pos).reshape(shape)
            pos += size
        aliases = {}
        for _ in range(take("I")):
            alias = string()
            aliases[alias] = string()
    except (struct.error, IndexError, ValueError) as error:
        raise RegistryError(f"not a CTranslate2 model file ({error})") from None
    if pos != len(data):
        raise RegistryError(f"not a CTranslate2 model file ({len(data) - pos} bytes after its end)")
    return Ct2Model(spec_name, revision, variables, aliases)


def whisper_to_int8(source: bytes, dest: Path) -> None:
    """Write `source` (a Whisper model.bin's bytes, any float type) to `dest` with int8 weights."""
    from ctranslate2.specs import model_spec, whisper_spec

    model = read_model(source)
    if model.spec_name != "WhisperSpec":
        raise RegistryError(f"a {model.spec_name} model, not Whisper")
    names = model.variables

    def layers(side: str) -> int:
        found = [int(m.group(1)) for n in names if (m := re.match(side + r"/layer_(\d+)/", n))]
        return 1 + max(found)

    spec = whisper_spec.WhisperSpec(
        layers("encoder"), int(names["encoder/num_heads"]), layers("decoder"), int(names["decoder/num_heads"])
    )
    if spec.revision != model.revision:
        raise RegistryError(f"Whisper spec revision {model.revision}; this CTranslate2 writes {spec.revision}")
    # A spec attribute that does not exist raises (the spec is frozen), so a model that does not
    # fit this CTranslate2's Whisper is refused rather than half-converted.
    for name, array in names.items():
        scope, attr = name.rsplit("/", 1)
        setattr(model_spec.index_spec(spec, scope), attr, np.array(array))
    # A shared variable is set to the same values; optimize() finds the pair and aliases it again.
    for alias, target in model.aliases.items():
        scope, attr = alias.rsplit("/", 1)
        setattr(model_spec.index_spec(spec, scope), attr, np.array(names[target]))
    spec.register_vocabulary([""] * spec.get_vocabulary_size())  # only model.bin is kept
    spec.validate()
    spec.optimize("int8")
    # save() writes a whole model folder (model.bin, a config, a vocabulary); only model.bin is
    # kept, and the folder is the system's temp so nothing is left in the asset folder on a crash.
    with tempfile.TemporaryDirectory(prefix="voice-companion-int8-") as folder:
        spec.save(folder)
        shutil.move(Path(folder, "model.bin"), dest)
