"""The cascade's models placed by the device plan: what faster-whisper, llama.cpp and onnxruntime
receive, and faster-whisper falling back to the CPU when CUDA's cuBLAS is missing (forced)."""

import pytest

from models.devices import plan_devices
from tests.fakes import NVIDIA

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


@pytest.fixture(scope="module")
def paths():
    from models.cascade.engine import CascadePaths
    from models.registry import ModelStore

    store = ModelStore()
    return CascadePaths(
        asr_dir=store.ensure("whisper-base"),
        llm_file=store.ensure("qwen2.5-coder-0.5b-instruct-q4") / "model.gguf",
        tts_dir=store.ensure("piper-joe-medium"),
    )


def _received(engine) -> dict:
    llm = engine.chat._llm
    return {
        "n_gpu_layers": llm.model_params.n_gpu_layers,
        "flash_attn_type": llm.context_params.flash_attn_type,
        "asr": (engine.asr.device, engine.asr.compute_type),
        "tts": tuple(engine.tts._voice.session.get_providers()),
    }


def test_cpu_setting_reaches_every_cascade_model(paths):
    from models.cascade.engine import CascadeEngine

    engine = CascadeEngine.load(paths, plan=plan_devices("cpu", NVIDIA))
    assert _received(engine) == {
        "n_gpu_layers": 0,
        "flash_attn_type": 1,
        "asr": ("cpu", "int8"),
        "tts": ("CPUExecutionProvider",),
    }
    assert engine.notices == ()


def test_missing_cublas_starts_recognition_on_the_cpu_with_one_notice(paths, monkeypatch):
    """faster-whisper on CUDA needs CUDA 12's cuBLAS when it first computes; without it the
    cascade used to fail to warm up under "auto"."""
    from models.cascade import engine as cascade

    real = cascade.WhisperAsr

    class NoCublas(real):
        def transcribe(self, audio, cancelled=None, prompt=""):
            if self.device == "cuda":
                raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")
            return super().transcribe(audio, cancelled, prompt)

    made = []

    def asr(model_dir, threads, device, compute_type):
        made.append((device, compute_type))
        # This machine's CTranslate2 has no CUDA: the model is made on the CPU and told it is on
        # CUDA, so its first computation fails the way a missing cuBLAS does.
        model = NoCublas(model_dir, threads=threads)
        model.device, model.compute_type = device, compute_type
        return model

    monkeypatch.setattr(cascade, "WhisperAsr", asr)
    engine = cascade.CascadeEngine.load(paths, plan=plan_devices("cuda", NVIDIA))
    assert made == [("cuda", "int8_float16"), ("cpu", "int8")]
    (notice,) = engine.notices
    assert notice.startswith("speech recognition runs on the CPU: a CUDA library is missing (Library libcublas.so.12")
    assert "nvidia-cublas-cu12" in notice
    received = _received(engine)
    # The others as planned: all layers (llama-cpp-python passes -1 on as INT32_MAX).
    assert received["asr"] == ("cpu", "int8") and received["n_gpu_layers"] == 2**31 - 1
    assert engine.placements["asr"].device == "cpu" and engine.placements["chat_llm"].device == "CUDA"
    assert engine.asr.transcribe(__import__("numpy").zeros(16000, "float32")) == ""
