"""Mini-Omni's three downloads as registry assets: the LLM, the whisper-small encoder it was
trained with, and the SNAC 24 kHz codec, each from Hugging Face at a pinned commit.

A pin is only real when its commit and every file's size and SHA-256 were read from the hub.
`KNOWN` holds what has been confirmed; the catalogue lists an asset only once all its pins
are known, since a guessed hash would make every install fail its check. Until then the user can
have them read on their own machine (`voice-companion models pin mini-omni snac-24khz`, see
models/registry/pins.py), where what is known here must agree with what the hub says. Plain data:
the registry's catalogue builds its entries from it.
"""

from __future__ import annotations

from models.registry.pins import FilePin, RepoPin

LM, ENCODER, CODEC = "mini-omni", "whisper-small-encoder", "snac-24khz"


# asset id -> (role, licence, description)
DESCRIPTIONS = {
    LM: ("llm-omni", "MIT", "Mini-Omni speech-to-speech model (Qwen2-0.5B based), litgpt checkpoint"),
    ENCODER: ("audio-encoder", "MIT", "Whisper small audio encoder (openai-whisper checkpoint) for Mini-Omni"),
    CODEC: ("codec", "MIT", "SNAC 24 kHz neural audio codec, Mini-Omni's voice"),
}

# Read from the hub's pages: whisper small.pt was uploaded to gpt-omni/mini-omni2 in commit
# bb9541a4 (its LFS pointer: size and SHA-256; the same hash names OpenAI's own download of
# whisper "small"). Of gpt-omni/mini-omni only lit_model.pth's SHA-256 is known so far (2.78 GB,
# from a PR branch's file page), and nothing of snac_24khz beyond its file names: the commits,
# byte sizes and other hashes must be read from the hub before those two assets join the
# catalogue. Until then `models install mini-omni` asks for `models pin mini-omni` first.
KNOWN: dict[str, RepoPin] = {
    LM: RepoPin(
        "gpt-omni/mini-omni",
        None,
        (
            FilePin("lit_model.pth", None, "97fbcf5093ffe42f5015b10a70ff383a88e280e66b1c814c78656fb29cd600b6"),
            FilePin("model_config.yaml", None, None),
            FilePin("tokenizer.json", None, None),
        ),
    ),
    ENCODER: RepoPin(
        "gpt-omni/mini-omni2",
        "bb9541a44ac45b60d0541b3052736bd6bdc51da0",
        (FilePin("small.pt", 483617219, "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794"),),
    ),
    CODEC: RepoPin(
        "hubertsiuzdak/snac_24khz",
        None,
        (
            FilePin("config.json", None, None),
            FilePin("pytorch_model.bin", None, None),
        ),
    ),
}
