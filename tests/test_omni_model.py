"""Loading Mini-Omni's files, and the llama.cpp GGUF against the torch reference."""

import json

import numpy as np
import pytest
import torch
import yaml

from models.omni import tokens as T
from models.omni.checkpoint import load_codec, load_encoder, load_lm, load_tokenizer
from models.omni.config import CheckpointError, read_config
from models.omni.convert import convert, split_qkv
from models.omni.model import KVCache
from models.omni.lm_backends import LlamaBackend, TorchBackend
from test_omni_support import TINY, write_tiny

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("omni"), seed=3)


@pytest.fixture(scope="module")
def lm(tiny):
    return load_lm(tiny["lm"])


@pytest.fixture(scope="module")
def converted(lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    folders = {q: convert(lm, root / q, q) for q in ("f32", "q8_0", "q4_0", "q4_k_m")}
    folders["f32-widened"] = convert(lm, root / "f32-widened", "f32", width=256)
    return folders


# ---- loading ------------------------------------------------------------------------------


def test_loader_round_trip(tiny, lm):
    saved = torch.load(tiny["lm"] / "lit_model.pth", weights_only=True)
    assert lm.config == TINY
    for name, tensor in lm.state_dict().items():
        if name != "lm_head.weight":
            assert torch.equal(tensor, saved[name]), name
    # Tied as the official code does: the head is the input table.
    assert lm.lm_head.weight.data_ptr() == lm.transformer["wte"].weight.data_ptr()
    encoder = load_encoder(tiny["encoder"] / "small.pt")
    assert encoder.conv1.weight.shape == (32, 80, 3)
    codec = load_codec(tiny["codec"])
    assert codec.sampling_rate == 24000 and codec.vq_strides == [4, 2, 1]
    tokenizer = load_tokenizer(tiny["lm"] / "tokenizer.json")
    ids = tokenizer.encode("tell me a story").ids
    assert max(ids) < T.EOT and tokenizer.decode(ids) == "tell me a story"


def _rewrite(src, dst, change):
    state = dict(torch.load(src, weights_only=True))
    change(state)
    torch.save(state, dst)


def test_mismatch_messages_name_the_problem(tiny, tmp_path):
    import shutil

    folder = tmp_path / "lm"
    shutil.copytree(tiny["lm"], folder)
    weights = folder / "lit_model.pth"
    _rewrite(tiny["lm"] / "lit_model.pth", weights, lambda s: s.pop("transformer.h.1.norm_2.weight"))
    with pytest.raises(CheckpointError, match=r"missing: transformer\.h\.1\.norm_2\.weight"):
        load_lm(folder)

    def wrong_shape(s):
        s["transformer.h.0.attn.attn.weight"] = torch.zeros(100, 64)

    _rewrite(tiny["lm"] / "lit_model.pth", weights, wrong_shape)
    with pytest.raises(
        CheckpointError, match=r"wrong shape: transformer\.h\.0\.attn\.attn\.weight \(100, 64\) != \(128, 64\)"
    ):
        load_lm(folder)

    _rewrite(tiny["lm"] / "lit_model.pth", weights, lambda s: s.update(extra=torch.zeros(1)))
    with pytest.raises(CheckpointError, match="unexpected: extra") as caught:
        load_lm(folder)
    assert "\n" not in str(caught.value) and "lit_model.pth" in str(caught.value)

    weights.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_lm(folder)


def test_config_checks(tiny, tmp_path):
    text = (tiny["lm"] / "model_config.yaml").read_text()
    assert read_config(tiny["lm"] / "model_config.yaml") == TINY
    bad = tmp_path / "model_config.yaml"
    bad.write_text(text.replace("padded_vocab_size: 181120", "padded_vocab_size: 151936"))
    with pytest.raises(CheckpointError, match="not text \\+ 7 audio layers"):
        read_config(bad)
    bad.write_text(text.replace("mlp_class_name: LLaMAMLP", "mlp_class_name: GptNeoxMLP"))
    with pytest.raises(CheckpointError, match="mlp_class_name"):
        read_config(bad)
    # The real file writes small floats without a dot, which YAML reads as strings.
    bad.write_text(yaml.safe_dump({**yaml.safe_load(text), "norm_eps": "1e-06"}))
    assert read_config(bad).norm_eps == 1e-6


@pytest.mark.parametrize(
    "key, value",
    [
        ("rotary_percentage", 0.25),
        ("parallel_residual", True),
        ("scale_embeddings", True),
        ("lm_head_bias", True),
        ("shared_attention_norm", True),
        ("rope_condense_ratio", 2),
        ("n_expert", 8),
        ("post_attention_norm", True),
        ("final_logit_softcapping", 30.0),
        ("sliding_window_size", 64),
        ("bias", True),
    ],
)
def test_config_values_the_model_does_not_compute_are_refused_by_name(tiny, tmp_path, key, value):
    """A config the model code would load and compute wrongly: one line naming the field."""
    raw = yaml.safe_load((tiny["lm"] / "model_config.yaml").read_text())
    bad = tmp_path / "model_config.yaml"
    bad.write_text(yaml.safe_dump({**raw, key: value}))
    with pytest.raises(CheckpointError, match=f"{key} is {value!r}; this engine implements only") as caught:
        read_config(bad)
    assert "\n" not in str(caught.value) and "model_config.yaml" in str(caught.value)


@pytest.mark.parametrize(
    "key, value",
    [
        ("rotary_percentage", 1),
        ("rotary_percentage", "1.0"),
        ("parallel_residual", False),
        ("sliding_window_size", 4096),
        ("sliding_window_size", None),
    ],
)
def test_config_values_equal_to_what_the_model_computes_are_accepted(tiny, tmp_path, key, value):
    raw = yaml.safe_load((tiny["lm"] / "model_config.yaml").read_text())
    raw.pop("rotary_percentage")  # litgpt's default (1.0) when the file leaves it out
    good = tmp_path / "model_config.yaml"
    good.write_text(yaml.safe_dump({**raw, key: value}))
    assert read_config(good) == TINY


def test_encoder_and_codec_mismatches(tiny, tmp_path):
    torch.save({"model_state_dict": {}}, tmp_path / "small.pt")
    with pytest.raises(CheckpointError, match="not an openai-whisper checkpoint"):
        load_encoder(tmp_path / "small.pt")
    saved = torch.load(tiny["encoder"] / "small.pt", weights_only=True)
    del saved["model_state_dict"]["encoder.ln_post.bias"]
    torch.save(saved, tmp_path / "small.pt")
    with pytest.raises(CheckpointError, match="missing: ln_post.bias"):
        load_encoder(tmp_path / "small.pt")
    codec = tmp_path / "codec"
    codec.mkdir()
    (codec / "config.json").write_text(json.dumps({"sampling_rate": 24000, "no_such_field": 1}))
    with pytest.raises(CheckpointError, match="not a SNAC config"):
        load_codec(codec)


# ---- the model's math ---------------------------------------------------------------------


def test_qkv_split_matches_the_grouped_layout():
    # Rows tagged by (group, slot, row): slot < 2 are q heads of that group, 2 is k, 3 is v.
    G, per, D = TINY.n_query_groups, TINY.n_head // TINY.n_query_groups, TINY.head_size
    tags = torch.tensor([g * 1000 + s * 100 + r for g in range(G) for s in range(per + 2) for r in range(D)])
    q, k, v = split_qkv(tags, TINY)
    assert q.tolist() == [g * 1000 + s * 100 + r for g in range(G) for s in range(per) for r in range(D)]
    assert k.tolist() == [g * 1000 + per * 100 + r for g in range(G) for r in range(D)]
    assert v.tolist() == [g * 1000 + (per + 1) * 100 + r for g in range(G) for r in range(D)]


def test_kv_cache_steps_equal_one_whole_pass(lm):
    x = torch.randn(2, 9, TINY.n_embd)
    whole = lm(x)
    cache = KVCache(TINY, 2)
    parts = [lm(x[:, :5], cache, 0)] + [lm(x[:, i : i + 1], cache, i) for i in range(5, 9)]
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-5)


def _run(backend, features, steps):
    a, b = T.text_guided_batch(len(features))
    out = backend.start([backend.embed(a.ids, features), backend.embed(b.ids, features)])
    for ids0, ids1 in steps:
        out += backend.step([backend.embed(ids0)[0], backend.embed(ids1)[0]])
    # Item 1 finished (its text ended): only item 0 goes on.
    last = backend.step([backend.embed(steps[0][0])[0], None])
    assert last[1] is None
    return out + last[:1]


@pytest.fixture(scope="module")
def reference(lm):
    rng = np.random.default_rng(0)
    features = rng.normal(0, 0.3, (12, TINY.n_embd)).astype(np.float32)
    steps = [
        (
            T.to_global(rng.integers(0, 4096, (7, 1))).tolist() + [[int(rng.integers(0, 150000))]],
            T.to_global(np.full((7, 1), T.PAD_A)).tolist() + [[T.PAD_T]],
        )
        for _ in range(3)
    ]
    steps = [(np.array(a), np.array(b)) for a, b in steps]
    return features, steps, _run(TorchBackend(lm), features, steps)


def _relative(found, wanted):
    return max(np.linalg.norm(f - w) / np.linalg.norm(w) for f, w in zip(found, wanted))


@pytest.mark.parametrize("mode", ["separate", "joint"])
def test_gguf_f32_matches_torch(converted, reference, mode):
    features, steps, wanted = reference
    backend = LlamaBackend(converted["f32"], step_mode=mode)
    try:
        found = _run(backend, features, steps)
    finally:
        backend.close()
    assert len(found) == len(wanted) == 9
    assert all(f.shape == (181120,) for f in found)  # the full width comes back
    assert _relative(found, wanted) <= 1e-4


def test_a_widened_f32_file_is_the_same_model(converted, reference):
    """Widening for k-quants (zero channels, zero query heads, norms rescaled) changes no logit."""
    import gguf

    reader = gguf.GGUFReader(converted["f32-widened"] / "model.gguf")
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    assert shapes["blk.0.attn_output.weight"] == (256, 256) and shapes["output.weight"] == (256, 181120)
    error = _error_against_torch(converted["f32-widened"], reference)
    assert error <= 1e-4, error


def test_gguf_q4_k_m_is_k_quantized_throughout(converted, reference):
    """On the widened model llama.cpp's Q4_K_M recipe applies to every matrix that reads the
    residual stream: no q5_0 fallback. (The small model's feed-forward width, 128, is not a
    multiple of 256 and falls back; the real one's, 4864, is.)"""
    import gguf

    types = {t.name: t.tensor_type for t in gguf.GGUFReader(converted["q4_k_m"] / "model.gguf").tensors}
    k_quants = {gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q5_K, gguf.GGMLQuantizationType.Q6_K}
    matrices = [
        n
        for n in types
        if n.endswith(".weight") and "norm" not in n and n != "token_embd.weight" and not n.endswith("ffn_down.weight")
    ]
    assert all(types[n] in k_quants for n in matrices), {n: types[n].name for n in matrices}
    assert types["output.weight"] == gguf.GGMLQuantizationType.Q4_K  # not the recipe's slower q6_K
    error = _error_against_torch(converted["q4_k_m"], reference)
    assert 0 < error <= 0.3, error


def test_calibrate_keeps_the_faster_step_mode(converted, reference):
    features, steps, _ = reference
    backend = LlamaBackend(converted["q8_0"])
    try:
        _run(backend, features, steps)
        row = backend.embed(steps[0][0])[0]
        seconds = backend.calibrate([row, row], steps=2)
    finally:
        backend.close()
    assert set(seconds) == {"separate", "joint"} and all(t > 0 for t in seconds.values())
    assert backend.step_mode == min(seconds, key=seconds.get)


def _error_against_torch(folder, reference) -> float:
    features, steps, wanted = reference
    backend = LlamaBackend(folder)
    try:
        return _relative(_run(backend, features, steps), wanted)
    finally:
        backend.close()


def test_prefill_is_fed_in_parts_and_stops_between_them_when_cancelled(converted, reference):
    from models.engine import Cancelled

    features, steps, wanted = reference
    backend = LlamaBackend(converted["q8_0"])
    try:
        backend.prefill_chunk = 4
        a, b = T.text_guided_batch(len(features))
        prompts = [backend.embed(a.ids, features), backend.embed(b.ids, features)]
        assert len(prompts[0]) > 12
        asked = []

        def cancelled():
            asked.append(backend._pos[0])
            return len(asked) == 3

        with pytest.raises(Cancelled):
            backend.start(prompts, cancelled)
        assert asked == [0, 4, 8]  # asked before each part; the third never ran
        found = _run(backend, features, steps)  # the next reply starts clean, in parts of 4
    finally:
        backend.close()
    assert _relative(found, wanted) <= 2e-2


def test_gguf_q8_0_is_close(converted, reference):
    error = _error_against_torch(converted["q8_0"], reference)
    assert 0 < error <= 2e-2  # quantized: close, and not secretly the f32 file


def test_gguf_q4_0_is_four_bit_throughout_and_still_follows_the_model(converted, reference):
    """Every matrix, the head included, in q4_0 (what llama.cpp repacks for fast CPU kernels);
    its logits further from torch than q8_0's, but the same model."""
    import gguf

    types = {t.name: t.tensor_type for t in gguf.GGUFReader(converted["q4_0"] / "model.gguf").tensors}
    matrices = [name for name in types if name.endswith(".weight") and "norm" not in name]
    assert "output.weight" in matrices and len(matrices) > 4
    assert all(types[name] == gguf.GGMLQuantizationType.Q4_0 for name in matrices), types
    error = _error_against_torch(converted["q4_0"], reference)
    assert 2e-2 < error <= 0.3, error  # measured 0.18 (q8_0: within 0.02)


def test_converted_folder_layout(converted, lm):
    folder = converted["q8_0"]
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.pt", "embeddings.npy", "model.gguf", "omni.json"]
    table = np.load(folder / "embeddings.npy", mmap_mode="r")
    assert table.shape == (181120, 64) and table.dtype == np.float16
    assert not list(folder.glob(".*"))  # no staging or temp file left behind
    assert (converted["f32"] / "model.gguf").stat().st_size > (folder / "model.gguf").stat().st_size * 3


# ---- the whisper encoder ------------------------------------------------------------------


def test_log_mel_shape_and_filters():
    from models.omni.whisper_encoder import log_mel, mel_filters

    mel = log_mel(torch.zeros(480000))
    assert mel.shape == (1, 80, 3000)  # 30 s at 100 frames/s, whisper's window
    filters = mel_filters()
    assert filters.shape == (80, 201)
    peaks = filters.argmax(dim=1)
    assert torch.all(peaks[1:] >= peaks[:-1])  # triangles climb the spectrum in order
    assert torch.all(filters.sum(dim=1) > 0)  # none empty


def test_encoder_window_frames_and_reduced_precision(tiny):
    encoder = load_encoder(tiny["encoder"] / "small.pt")
    audio = np.sin(np.arange(32000) * 0.05).astype(np.float32)
    exact = encoder.encode(audio, 101, pad_to_30s=True, fast=False)
    assert exact.shape == (1, 101, 32)
    fast = encoder.encode(audio, 101, pad_to_30s=True, fast=True)
    assert torch.linalg.vector_norm(fast - exact) / torch.linalg.vector_norm(exact) < 3e-2
    short = encoder.encode(audio, 101, pad_to_30s=False, fast=False)
    assert short.shape == exact.shape and not torch.allclose(short, exact)  # attention saw less padding
    with pytest.raises(ValueError, match="at most 1500 frames"):
        encoder.encode(audio, 1501, pad_to_30s=True)


def test_encoder_computes_only_the_kept_frames_in_its_last_block(tiny):
    """The last block's rows past the turn are never used: it computes only the kept ones, whose
    values are those of the whole window (they still attend to all of it)."""
    from models.omni.whisper_encoder import log_mel

    encoder = load_encoder(tiny["encoder"] / "small.pt")
    mel = log_mel(torch.from_numpy(np.random.default_rng(2).normal(0, 0.1, 16000 * 30).astype(np.float32)))
    shapes = []
    hook = encoder.blocks[-1].mlp.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    with torch.inference_mode():
        whole, kept = encoder(mel), encoder(mel, 101)
    hook.remove()
    assert shapes == [(1, 1500, 32), (1, 101, 32)]
    assert torch.allclose(kept, whole[:, :101], atol=1e-5, rtol=1e-5)


# ---- the decoding hot path ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["separate", "joint"])
def test_greedy_steps_read_the_logits_in_place_and_choose_as_the_copies_do(converted, reference, mode):
    """Each step's choices are read from llama.cpp's own buffer (no 181120-wide copy per step)
    and equal the arg-max over the copied logits, in both step modes (a separate step decodes the
    second sequence after reading the first's, which that decode overwrites)."""
    from models.omni.generate import AUDIO_STREAMS, TEXT_STREAM, greedy

    features, steps, _ = reference
    backend = LlamaBackend(converted["q8_0"], step_mode=mode)
    try:
        a, b = T.text_guided_batch(len(features))
        prompts = [backend.embed(a.ids, features), backend.embed(b.ids, features)]
        streams = [AUDIO_STREAMS, TEXT_STREAM]
        backend.start(prompts)
        copied = [backend.step([backend.embed(x)[0], backend.embed(y)[0]]) for x, y in steps]
        wanted = [[[greedy(row, s) for s in wanted] for row, wanted in zip(rows, streams)] for rows in copied]
        backend.start(prompts)
        backend._logits = None  # a copy of a whole row would now fail
        found = [backend.step_greedy([backend.embed(x)[0], backend.embed(y)[0]], streams) for x, y in steps]
    finally:
        backend.close()
    assert [[c.tolist() for c in rows] for rows in found] == wanted
    assert len({tuple(rows[0]) for rows in wanted}) > 1  # the steps choose differently: a real check
