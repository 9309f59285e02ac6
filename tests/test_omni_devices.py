"""The device plan: from the compute setting and what a machine offers, where each model runs and
in which number format; what each backend then receives; and the CPU taking over when a model
fails to start on a GPU (each failure forced)."""

import numpy as np
import pytest
import torch

from models.devices import Machine, Placement, gpu_failure, plan_devices, start_on_device
from tests.fakes import NVIDIA
from models.engine import CancelToken, ReplyDone, Style, UserTurn
from test_omni_support import write_tiny

CPU_ONLY = Machine(platform="linux")
MAC = Machine(platform="darwin", torch_mps=True, llama_gpu="Metal")
VULKAN = Machine(platform="linux", llama_gpu="Vulkan")
LLAMA = ("chat_llm", "omni_llm")
TORCH = ("omni_encoder", "omni_adapter", "snac")
# The tiny Mini-Omni engines below run on one thread (llama.cpp's and torch's, restored after the
# module): the threads are not what is tested, and two wait for each other on a busy machine.
THREADS = 1
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_cpu_means_the_cpu_for_every_model_even_with_a_gpu():
    plan = plan_devices("cpu", NVIDIA)
    for name in LLAMA:
        assert getattr(plan, name).gpu_layers == 0 and getattr(plan, name).device == "CPU"
    for name in TORCH:
        assert (getattr(plan, name).device, getattr(plan, name).number_format) == ("cpu", "float32")
    assert (plan.asr.device, plan.asr.number_format) == ("cpu", "int8")
    assert plan.tts.providers == ("CPUExecutionProvider",)


def test_an_nvidia_machine_runs_everything_that_can_on_cuda():
    for compute in ("auto", "cuda"):
        plan = plan_devices(compute, NVIDIA)
        assert all(getattr(plan, n).device == "CUDA" and getattr(plan, n).gpu_layers == -1 for n in LLAMA)
        assert (plan.omni_encoder.device, plan.omni_encoder.number_format) == ("cuda", "float16")
        assert plan.omni_adapter == plan.omni_encoder
        assert (plan.snac.device, plan.snac.number_format) == ("cuda", "float32")  # Snake needs float32
        assert (plan.asr.device, plan.asr.number_format) == ("cuda", "int8_float16")
        assert plan.tts.providers[0] == "CUDAExecutionProvider"
        assert plan.vad.providers == ("CPUExecutionProvider",) and plan.vad.why  # and it says why


def test_metal_says_where_it_cannot_go():
    plan = plan_devices("metal", MAC)
    assert plan.omni_llm.device == "Metal" and plan.omni_llm.gpu_layers == -1
    assert (plan.omni_encoder.device, plan.omni_encoder.number_format) == ("mps", "float16")
    assert plan.asr.device == "cpu" and "CTranslate2 has no Metal" in plan.asr.why  # not silently
    assert plan_devices("cuda", MAC).omni_llm.gpu_layers == 0  # a Metal build is not CUDA
    assert "Metal, not a CUDA GPU" in plan_devices("cuda", MAC).omni_llm.why


def test_llama_offload_is_labelled_by_its_real_backend():
    plan = plan_devices("auto", VULKAN)
    assert plan.omni_llm.device == "Vulkan" and plan.omni_llm.gpu_layers == -1
    assert "Vulkan, not CUDA" in plan_devices("cuda", VULKAN).omni_llm.why
    assert plan_devices("metal", VULKAN).omni_llm.gpu_layers == 0


def test_without_a_gpu_every_choice_says_why(monkeypatch):
    for compute in ("cuda", "metal"):
        plan = plan_devices(compute, CPU_ONLY)
        assert all(not getattr(plan, n).on_gpu and getattr(plan, n).why for n in LLAMA + TORCH + ("asr", "tts"))
    with pytest.raises(ValueError, match="choose one of auto, cuda, metal, cpu"):
        plan_devices("gpu", CPU_ONLY)
    from core.engines import compute_options

    options = compute_options(CPU_ONLY)
    assert options["auto"] is None and options["cpu"] is None
    assert "no GPU backend" in options["cuda"] and "CTranslate2 has no Metal" in options["metal"]
    assert compute_options(NVIDIA)["cuda"] is None


def test_the_plan_as_json_and_lines():
    plan = plan_devices("auto", NVIDIA)
    shown = plan.to_json()
    assert shown["compute"] == "auto" and shown["models"]["omni_encoder"]["number_format"] == "float16"
    lines = plan.lines()
    assert "omni_llm: CUDA, GGUF as stored, f16 KV cache, all layers, flash attention" in lines
    assert any(line.startswith("vad: cpu, float32 (") for line in lines)


# ---- what the Mini-Omni loaders receive ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from models.omni.checkpoint import load_lm
    from models.omni.convert import convert
    from models.omni.engine import OmniPaths

    root = tmp_path_factory.mktemp("omni-devices")
    files = write_tiny(root, seed=5, dtype=torch.float16)  # whisper's released format
    converted = convert(load_lm(files["lm"]), root / "q8_0", "q8_0")
    return OmniPaths(files["lm"], files["encoder"] / "small.pt", files["codec"], converted)


def _answers(engine) -> bool:
    events = list(engine.respond(UserTurn(audio=np.zeros(16000, np.float32) + 0.01), Style(), CancelToken()))
    return events[-1] == ReplyDone("complete")


def test_omni_on_cpu_gets_no_gpu_layers_and_float32(tiny):
    from models.omni.engine import load_engine

    engine = load_engine(tiny, "llama", threads=THREADS, plan=plan_devices("cpu", NVIDIA))
    assert engine.backend.params["n_gpu_layers"] == 0
    assert engine.backend.params["flash_attn_type"] == 1
    assert engine.encoder.conv1.weight.device.type == "cpu" and engine.encoder.conv1.weight.dtype == torch.float32
    assert next(engine.codec.snac.parameters()).dtype == torch.float32
    assert engine.notices == () and _answers(engine)


def test_omni_gpu_parts_that_cannot_start_fall_back_to_the_cpu_with_one_notice_each(tiny):
    """Planned for an NVIDIA machine, started on this CPU-only torch: the encoder and codec fail
    for real at `.to("cuda")` and start on the CPU; llama.cpp receives the plan's layers."""
    from models.omni.engine import load_engine

    engine = load_engine(tiny, "llama", threads=THREADS, plan=plan_devices("auto", NVIDIA))
    assert engine.backend.params["n_gpu_layers"] == -1  # what was asked (this build has no GPU to use)
    assert len(engine.notices) == 2
    assert engine.notices[0].startswith("the speech encoder runs on the CPU: this torch build has no CUDA on cuda;")
    assert "install a CUDA build of torch" in engine.notices[0]
    assert engine.notices[1].startswith("the audio codec runs on the CPU")
    assert engine.placements["omni_encoder"] == Placement("cpu", "float32", "this torch build has no CUDA")
    assert engine.placements["omni_adapter"] == engine.placements["omni_encoder"]
    assert _answers(engine)


def test_omni_language_model_out_of_memory_on_the_gpu_starts_on_the_cpu(tiny, monkeypatch):
    from models.omni import engine as omni_engine

    real = omni_engine.start_llama
    given = []

    def out_of_memory_on_gpu(folder, threads, placement, adapter):
        given.append(placement.gpu_layers)
        if placement.gpu_layers:
            raise RuntimeError(f"llama.cpp could not load {folder}/model.gguf")
        return real(folder, threads, placement, adapter)

    monkeypatch.setattr(omni_engine, "start_llama", out_of_memory_on_gpu)
    plan = plan_devices("auto", Machine(platform="linux", llama_gpu="CUDA"))
    engine = omni_engine.load_engine(tiny, "llama", threads=THREADS, plan=plan)
    assert given == [-1, 0] and engine.backend.params["n_gpu_layers"] == 0
    (notice,) = engine.notices
    assert "the Mini-Omni language model runs on the CPU" in notice and "GPU memory" in notice
    assert "smaller quantization" in notice and _answers(engine)


# ---- the fallback's words ----------------------------------------------------------------


@pytest.mark.parametrize(
    "error, cause, fix",
    [
        (
            RuntimeError("Library libcublas.so.12 is not found or cannot be loaded"),
            "a CUDA library is missing",
            "nvidia-cublas-cu12",
        ),
        (
            torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            "out of GPU memory",
            "choose CPU in Settings",
        ),
        (
            NotImplementedError("The operator 'aten::_fft_r2c' is not currently implemented for the MPS device."),
            "an operation Metal (MPS) lacks",
            "PYTORCH_ENABLE_MPS_FALLBACK=1",
        ),
    ],
)
def test_each_gpu_failure_starts_the_model_on_the_cpu_with_cause_and_fix(error, cause, fix):
    tried = []

    def start(placement):
        tried.append(placement)
        if placement.on_gpu:
            raise error
        return "started"

    notices = []
    model, placement = start_on_device("the model", Placement("cuda", "float16"), start, notices)
    assert model == "started" and [p.device for p in tried] == ["cuda", "cpu"]
    assert placement.number_format == "float32" and placement.why.startswith(cause)
    (notice,) = notices
    assert notice.startswith(f"the model runs on the CPU: {cause}") and fix in notice and "\n" not in notice
    assert gpu_failure(error)[0].startswith(cause)


def test_a_failure_on_the_cpu_is_not_hidden():
    def start(placement):
        raise RuntimeError("broken file")

    notices = []
    with pytest.raises(RuntimeError, match="broken file"):
        start_on_device("the model", Placement("cpu", "float32"), start, notices)
    assert notices == []


# ---- the benchmark's device ----------------------------------------------------------------


def test_bench_omni_refuses_a_device_nothing_can_use_in_one_line(capsys):
    from app.cli import main
    from bench.omni import bench_plan, placed

    assert main(["bench", "omni", "--device", "cuda"]) == 2  # this host: CPU-only torch and llama.cpp
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bench omni --device cuda: nothing can run there" in err
    assert main(["bench", "latency", "--device", "cpu"]) == 2
    assert "--device applies to bench omni only" in capsys.readouterr().err
    assert main(["bench", "soak", "--asr", "whisper-tiny-en"]) == 2
    assert "--asr applies to bench natural and latency only" in capsys.readouterr().err
    assert main(["bench", "omni", "--quants", "q3"]) == 2
    plan = bench_plan("cpu")
    assert placed(plan.omni_llm, "q4_k_m") == {
        "device": "CPU",
        "number_format": "q4_k_m",
        "why": "the setting is CPU",
        "flash_attention": True,
    }
    assert placed(plan.omni_encoder)["number_format"] == "float32"
