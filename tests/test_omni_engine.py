"""The text-guided decoding loop, its stop rules and cancellation (on a scripted backend whose
logits say exactly what each sequence wants), and the engine end to end."""

import threading
import time

import numpy as np
import pytest

from models.engine import CancelToken, ReplyAudio, ReplyDone, Style, TranscriptFinal, UserTurn
from models.omni import tokens as T
from models.omni.config import OmniConfig
from models.omni.generate import Step, Stop, text_guided

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


def _logits(text: int | None, audio: list[int] | None) -> np.ndarray:
    out = np.zeros(T.PADDED_VOCAB, np.float32)
    if text is not None:
        out[text] = 1
    for layer, local in enumerate(audio or []):
        out[T.audio_shift(layer) + local] = 1
    return out


class Scripted:
    """Item 0 always wants audio codes 100*layer + step and text 7 (which must be ignored);
    item 1 wants text tokens from `texts` and audio code 9 (which must be ignored). Records
    every input row so the feedback can be checked; `embed` keeps the ids themselves."""

    def __init__(self, texts, block_size=2048, eoa_at=None, delay=0.0):
        self.config = OmniConfig(block_size=block_size)
        self.texts, self.eoa_at, self.delay = texts, eoa_at, delay
        self.inputs: list[list[np.ndarray]] = []
        self.steps = 0

    def embed(self, ids, features=None):
        return np.asarray(ids, np.float64).T

    def _answer(self):
        s = self.steps
        audio0 = [100 * layer + s for layer in range(7)]
        if self.eoa_at is not None and s >= self.eoa_at:
            audio0[6] = T.EOA
        text1 = self.texts[s] if s < len(self.texts) else T.EOT
        return [_logits(7, audio0), _logits(text1, [9] * 7)]

    def start(self, prompts, cancelled=None):
        self.prompt_length = len(prompts[0])
        return self._answer()

    def step(self, inputs):
        time.sleep(self.delay)
        self.inputs.append(inputs)
        self.steps += 1
        answer = self._answer()
        return [a if x is not None else None for a, x in zip(answer, inputs)]


def _run(backend, **kw):
    return list(text_guided(backend, T.text_guided_batch(4), None, **kw))


def test_audio_from_item_0_and_text_from_item_1():
    backend = Scripted(texts=[11, 12, 13], eoa_at=12)
    out = _run(backend)
    steps = [s for s in out if isinstance(s, Step)]
    assert [s.text for s in steps[:4]] == [11, 12, 13, None]  # item 1's text, _eot not emitted
    for s in steps:
        # Layer i is held at _pad_a during its delay, then is item 0's choice.
        assert s.audio.tolist() == [100 * i + s.index if s.index >= i + 1 else T.PAD_A for i in range(6)] + [
            (T.EOA if s.index >= 12 else 600 + s.index) if s.index >= 7 else T.PAD_A
        ]
    # Fed back: item 0 gets its own audio + the shared text; item 1 pads + the same text.
    first0, first1 = backend.inputs[0]
    assert first0.tolist() == T.to_global(steps[0].audio).tolist() + [11]
    assert first1.tolist() == T.to_global(np.full(7, T.PAD_A)).tolist() + [11]


def test_eot_is_fed_once_then_text_is_padded_and_item_1_stops():
    backend = Scripted(texts=[11], eoa_at=10)
    _run(backend)
    fed_text = [int(rows[0][-1]) for rows in backend.inputs]
    assert fed_text[:3] == [11, T.EOT, T.PAD_T] and set(fed_text[2:]) == {T.PAD_T}
    assert int(backend.inputs[0][1][-1]) == 11
    # Item 1 serves only the text: once _eot is chosen it is not run again.
    assert all(rows[1] is None for rows in backend.inputs[1:])


def test_frames_follow_the_delay_and_stop_on_eoa_in_the_last_layer():
    backend = Scripted(texts=[11], eoa_at=12)
    out = _run(backend)
    assert out[-1] == Stop("eoa", 13)
    frames = [s.frame for s in out if isinstance(s, Step) and s.frame is not None]
    # Steps 7..11 complete frames 0..4; step 12 (the _eoa) completes none.
    assert len(frames) == 5
    for t, frame in enumerate(frames):
        assert frame.tolist() == [100 * i + t + i + 1 for i in range(7)]


def test_max_length_stops_and_counts_the_prompt():
    backend = Scripted(texts=[11], block_size=20)
    out = _run(backend)
    prompt = T.a1a2(4).length  # 7 positions
    assert out[-1] == Stop("max_length", 20 - prompt)
    out = _run(Scripted(texts=[11]), max_positions=prompt + 3)
    assert out[-1] == Stop("max_length", 3)


def test_cancel_stops_within_one_step():
    backend = Scripted(texts=[11] * 100, delay=0.02)
    cancel = threading.Event()
    seen = []
    for item in text_guided(backend, T.text_guided_batch(4), None, cancelled=cancel.is_set):
        seen.append(item)
        if len(seen) == 5:
            cancel.set()
            at = backend.steps
    assert seen[-1] == Stop("cancelled", 5)
    assert backend.steps <= at + 1


# ---- the engine on a small random checkpoint ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    from models.omni.engine import OmniPaths, load_engine
    from test_omni_support import write_tiny

    folders = write_tiny(tmp_path_factory.mktemp("omni-engine"), seed=4)
    paths = OmniPaths(folders["lm"], folders["encoder"] / "small.pt", folders["codec"])
    return load_engine(paths, backend="torch")


def _voice(seconds=1.5):
    return (0.1 * np.sin(np.arange(int(16000 * seconds)) * 0.07)).astype(np.float32)


def test_engine_streams_text_and_audio_then_completes(tiny_engine):
    events = list(tiny_engine.respond(UserTurn(audio=_voice()), Style(), CancelToken()))
    assert isinstance(events[-1], ReplyDone) and events[-1].reason == "complete"
    assert any(isinstance(e, TranscriptFinal) for e in events)
    audio = [e for e in events if isinstance(e, ReplyAudio)]
    assert len(audio) >= 2 and all(e.rate == 24000 for e in audio)  # streamed in chunks
    # block_size 128 bounds the answer: every completed frame is spoken, none lost at the end.
    prompt = T.whisper_frames(len(_voice())) + 3
    frames = 128 - prompt - 7
    assert sum(len(e.samples) for e in audio) == frames * 2048
    assert tiny_engine.capabilities.instruction_styles is False


def test_engine_answers_typed_text(tiny_engine):
    events = list(tiny_engine.respond(UserTurn(text="tell me a story"), Style(), CancelToken()))
    assert events[-1].reason == "complete"
    assert TranscriptFinal("tell me a story") in events


def test_engine_cancel_ends_the_reply_within_a_step(tiny_engine):
    events = []
    token = CancelToken()
    for event in tiny_engine.respond(UserTurn(audio=_voice()), Style(), token):
        events.append(event)
        if isinstance(event, ReplyAudio) and not token.cancelled:
            token.cancel()
    assert events[-1] == ReplyDone("cancelled")
    with tiny_engine.lease:  # free once the worker has stopped (bench omni times how soon)
        pass
    assert not [t for t in threading.enumerate() if t.name.startswith("omni-")]
    # Ready for the next turn.
    assert list(tiny_engine.respond(UserTurn(text="hello"), Style(), CancelToken()))[-1].reason == "complete"


def test_engine_cancel_during_encoding_stops_at_the_next_block(tiny_engine):
    """A reply started at a pause and cancelled (the user went on) frees the worker at the next
    encoder block, not after the whole pass (here: cancelled in the front convolutions, so no
    transformer block runs)."""
    encoder = tiny_engine.encoder
    ran = []
    hooks = [block.register_forward_hook(lambda *_: ran.append("block")) for block in encoder.blocks]
    token = CancelToken()
    cancelling = encoder.conv2.register_forward_hook(lambda *_: token.cancel())
    try:
        events = list(tiny_engine.respond(UserTurn(audio=_voice()), Style(), token))
        with tiny_engine.lease:
            pass
        assert events[-1] == ReplyDone("cancelled")
        assert ran == []
        cancelling.remove()
        assert list(tiny_engine.respond(UserTurn(audio=_voice()), Style(), CancelToken()))[-1].reason == "complete"
        assert ran == ["block"] * len(encoder.blocks)
    finally:
        for hook in hooks + [cancelling]:
            hook.remove()


# ---- install from the hub, convert, talk: the command line end to end ------------------------

from test_registry import REVISION, fake_hub, sha256_bytes  # noqa: E402,F401  (a fixture)


@pytest.fixture
def published(tmp_path, fake_hub, monkeypatch):  # noqa: F811  (the fixture imported above)
    """A small random Mini-Omni on the local hub stand-in, catalogued with its real hashes."""
    from models.omni.assets import CODEC, DESCRIPTIONS, ENCODER, LM, FilePin, RepoPin
    from models.registry import catalog, cli
    from models.registry.store import ModelStore
    from test_omni_support import write_tiny

    folders = write_tiny(tmp_path / "upstream", seed=6)
    repos = {
        LM: ("gpt-omni/mini-omni", folders["lm"]),
        ENCODER: ("gpt-omni/mini-omni2", folders["encoder"]),
        CODEC: ("hubertsiuzdak/snac_24khz", folders["codec"]),
    }
    pins = {}
    for asset_id, (repo, folder) in repos.items():
        files = []
        for path in sorted(folder.iterdir()):
            content = path.read_bytes()
            fake_hub.publish(repo, REVISION, path.name, content, lfs=len(content) > 100_000)
            files.append(FilePin(path.name, len(content), sha256_bytes(content)))
        pins[asset_id] = RepoPin(repo, REVISION, tuple(files))
    others = tuple(a for a in catalog.BUILT_IN if a.id not in pins)  # the test's pins replace real ones
    monkeypatch.setattr(catalog, "BUILT_IN", others + catalog.hub_assets(pins, DESCRIPTIONS))
    monkeypatch.setattr(cli, "ModelStore", lambda: ModelStore(endpoint=fake_hub.endpoint))
    monkeypatch.setenv("VOICE_COMPANION_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_talk_with_omni_from_a_hub_install(published, tmp_path, capsys):
    import json

    import soundfile as sf

    from app.cli import SAMPLE_QUESTION, main

    assert main(["talk", str(SAMPLE_QUESTION), "--engine", "omni", "--out", str(tmp_path / "r.wav")]) == 2
    assert "voice-companion models install mini-omni" in capsys.readouterr().err  # one line, no traceback

    assert main(["models", "install", "mini-omni", "whisper-small-encoder", "snac-24khz"]) == 0
    assert (published / "models" / "mini-omni" / "lit_model.pth").is_file()
    assert main(["models", "convert", "mini-omni", "--quant", "q4_k_m"]) == 0
    converted = published / "converted" / "mini-omni-q4_k_m"
    assert (converted / "model.gguf").is_file()
    capsys.readouterr()

    out = tmp_path / "reply.wav"
    assert main(["talk", str(SAMPLE_QUESTION), "--engine", "omni", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    audio, rate = sf.read(out)  # the conversation as heard: the question, then the reply
    assert len(audio) / rate == pytest.approx(report["summary"]["seconds"], abs=0.02)
    assert report["reply_audio_seconds"] > 1.0 and report["summary"]["answered"] == 1
    assert report["latency_ms"]["response"] > 0

    # The fast CPU file, converted on first use.
    assert main(["talk", str(SAMPLE_QUESTION), "--engine", "omni", "--quant", "q4_0", "--out", str(out)]) == 0
    assert (published / "converted" / "mini-omni-q4_0" / "model.gguf").is_file()
    assert sf.info(out).duration > 1.0


def test_convert_bad_input_is_one_line(published, capsys):
    from app.cli import main

    assert main(["models", "convert", "mini-omni", "--quant", "q4_k_m"]) == 2  # not installed yet
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "models install mini-omni" in err and "Traceback" not in err
