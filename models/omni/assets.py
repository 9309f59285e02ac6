"""Mini-Omni's three downloads as registry assets: the LLM, the whisper-small encoder it was
trained with, and the SNAC 24 kHz codec, each from Hugging Face at a pinned commit.

A pin is only real when its commit and every file's size and SHA-256 were read from the hub.
`KNOWN` holds what has been confirmed; the catalogue lists an asset only once all its pins
are known, since a guessed hash would make every install fail its check. Plain data: the
registry's catalogue builds its entries from it.
"""
from __future__ import annotations

from dataclasses import dataclass

LM, ENCODER, CODEC = "mini-omni", "whisper-small-encoder", "snac-24khz"


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


# asset id -> (role, licence, description)
DESCRIPTIONS = {
    LM: ("llm-omni", "MIT", "Mini-Omni speech-to-speech model (Qwen2-0.5B based), litgpt checkpoint"),
    ENCODER: ("audio-encoder", "MIT", "Whisper small audio encoder (openai-whisper checkpoint) for Mini-Omni"),
    CODEC: ("codec", "MIT", "SNAC 24 kHz neural audio codec, Mini-Omni's voice"),
}

# From the hub's file pages: lit_model.pth of gpt-omni/mini-omni has SHA-256 97fbcf50...00b6
# (2.78 GB). The commits, exact byte sizes and the other files' hashes are still to be read from
# the hub; until then these assets are not in the catalogue (`voice-companion models install
# mini-omni` reports an unknown model) and the engine is used with the user's own files.
KNOWN: dict[str, RepoPin] = {
    LM: RepoPin("gpt-omni/mini-omni", None, (
        FilePin("lit_model.pth", None, "97fbcf5093ffe42f5015b10a70ff383a88e280e66b1c814c78656fb29cd600b6"),
        FilePin("model_config.yaml", None, None),
        FilePin("tokenizer.json", None, None),
    )),
    ENCODER: RepoPin("gpt-omni/mini-omni2", None, (FilePin("small.pt", None, None),)),
    CODEC: RepoPin("hubertsiuzdak/snac_24khz", None, (
        FilePin("config.json", None, None),
        FilePin("pytorch_model.bin", None, None),
    )),
}
