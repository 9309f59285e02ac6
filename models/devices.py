"""Where each model runs and in which number format: one plan, made from the compute setting
(auto / cuda / metal / cpu) and what this machine and these builds offer, that every loader obeys.

A placement that is not what the setting asked for says why (CTranslate2 has no Metal, this
torch has no CUDA, ...). A model whose GPU start still fails (libraries missing at run time, out
of memory, an operation Metal lacks) starts on the CPU instead, with one notice naming the cause
and the fix (`start_on_device`).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from dataclasses import asdict, dataclass
from typing import Callable, TypeVar

log = logging.getLogger(__name__)

COMPUTE = ("auto", "cuda", "metal", "cpu")
CPU_PROVIDERS = ("CPUExecutionProvider",)
_GGML_DEVICE_GPU, _GGML_DEVICE_IGPU = 1, 3  # enum ggml_backend_dev_type
_GGUF = "GGUF as stored, f16 KV cache"
# llama.cpp backends with flash-attention kernels for this model's head size (64)
_FLASH_ATTENTION = ("CPU", "CUDA", "Metal")


@dataclass(frozen=True)
class Machine:
    """What this machine and these builds can run on."""

    platform: str = sys.platform
    torch_cuda: bool = False
    torch_mps: bool = False
    cpu_bf16: bool = False  # the CPU multiplies in bfloat16 natively (AVX512-BF16, AMX)
    llama_gpu: str | None = None  # the GPU backend this llama.cpp build offloads through, by its name
    ct2_cuda: bool = False
    onnx_providers: tuple[str, ...] = CPU_PROVIDERS


@dataclass(frozen=True)
class Placement:
    """device: torch's (cpu, cuda, mps), CTranslate2's (cpu, cuda), llama.cpp's backend name (CPU,
    CUDA, Metal, Vulkan, ...) or onnxruntime's first provider's device; number_format: what the
    weights are held in there (torch dtype name, CTranslate2 compute type, or the GGUF's own);
    why: why it is not on the GPU the setting asked for ("" when it is where it was asked)."""

    device: str
    number_format: str
    why: str = ""
    gpu_layers: int = 0  # llama.cpp: layers offloaded (-1 all)
    flash_attention: bool = False  # llama.cpp
    providers: tuple[str, ...] = ()  # onnxruntime, in order of preference

    @property
    def on_gpu(self) -> bool:
        return self.device.lower() not in ("cpu", "")

    def on_cpu(self, why: str) -> "Placement":
        """The same model on the CPU in the CPU's format."""
        formats = {"float16": "float32", "bfloat16": "float32", "int8_float16": "int8"}
        return Placement(
            "CPU" if self.gpu_layers else "cpu",
            formats.get(self.number_format, self.number_format),
            why,
            gpu_layers=0,
            flash_attention=self.flash_attention,
            providers=CPU_PROVIDERS if self.providers else (),
        )


@dataclass(frozen=True)
class DevicePlan:
    compute: str
    chat_llm: Placement  # the cascade's chat model on llama.cpp
    omni_llm: Placement  # Mini-Omni's language model on llama.cpp
    omni_encoder: Placement  # whisper's encoder (torch)
    omni_adapter: Placement  # the 768 -> 896 adapter (torch), beside the encoder
    snac: Placement  # the audio codec (torch)
    asr: Placement  # faster-whisper (CTranslate2)
    tts: Placement  # Piper (onnxruntime)
    vad: Placement  # Silero (onnxruntime)
    turn_model: Placement  # Smart Turn (onnxruntime)

    def to_json(self) -> dict:
        return {"compute": self.compute, "models": {k: v for k, v in asdict(self).items() if k != "compute"}}

    def lines(self) -> list[str]:
        """One line per model, for people: "chat_llm: CUDA, all layers, flash attention"."""
        out = []
        for name, p in ((k, getattr(self, k)) for k in asdict(self) if k != "compute"):
            parts = [p.device, p.number_format]
            if p.gpu_layers:
                parts.append("all layers" if p.gpu_layers < 0 else f"{p.gpu_layers} layers")
            if p.flash_attention:
                parts.append("flash attention")
            out.append(f"{name}: {', '.join(parts)}" + (f" ({p.why})" if p.why else ""))
        return out


def plan_devices(compute: str = "auto", machine: Machine | None = None) -> DevicePlan:
    """The plan for a compute setting on `machine` (default: this one)."""
    if compute not in COMPUTE:
        raise ValueError(f"compute {compute!r}: choose one of {', '.join(COMPUTE)}")
    m = machine or probe_machine()
    return DevicePlan(
        compute,
        chat_llm=_llama(compute, m),
        omni_llm=_llama(compute, m),
        omni_encoder=_torch(compute, m, half=True),
        omni_adapter=_torch(compute, m, half=True),
        snac=_torch(compute, m, half=False),
        asr=_ctranslate2(compute, m),
        tts=_onnx(compute, m),
        vad=Placement(
            "cpu",
            "float32",
            "a 32 ms window at a time: a GPU round trip costs more than the CPU's run",
            providers=CPU_PROVIDERS,
        ),
        turn_model=Placement(
            "cpu",
            "float32",
            "one 8 s window per pause: the CPU answers in tens of milliseconds",
            providers=CPU_PROVIDERS,
        ),
    )


def _llama(compute: str, m: Machine) -> Placement:
    gpu = m.llama_gpu
    if compute == "cpu":
        return Placement("CPU", _GGUF, "the setting is CPU", flash_attention=True)
    wanted = {"cuda": "a CUDA GPU", "metal": "Metal"}.get(compute)
    if gpu is not None and (compute == "auto" or (compute == "metal") == (gpu == "Metal")):
        # Labelled by the backend it really is: a Vulkan or ROCm build asked for "CUDA" still uses
        # the GPU, and says through what.
        why = f"this llama.cpp build has {gpu}, not CUDA" if compute == "cuda" and gpu != "CUDA" else ""
        return Placement(gpu, _GGUF, why, gpu_layers=-1, flash_attention=gpu in _FLASH_ATTENTION)
    if gpu is None:
        why = "this llama.cpp build has no GPU backend" + (
            " (setup builds it with CUDA when it finds an NVIDIA GPU and a CUDA toolkit)" if compute != "metal" else ""
        )
    else:
        why = f"this llama.cpp build offloads through {gpu}, not {wanted}"
    return Placement("CPU", _GGUF, why, flash_attention=True)


def _torch(compute: str, m: Machine, half: bool) -> Placement:
    """half: the model computes well in 16 bits (whisper was trained in float16); SNAC stays in
    float32 everywhere (its Snake activations, sin(a x)^2 / a, lose their small values in float16,
    and at 20 M parameters it is cheap in float32)."""
    device, why = "cpu", ""
    if compute in ("auto", "cuda") and m.torch_cuda:
        device = "cuda"
    elif compute in ("auto", "metal") and m.torch_mps:
        device = "mps"
    elif compute in ("auto", "cuda"):
        why = "this torch build has no CUDA (or no NVIDIA GPU answers)" + (", nor Metal" if compute == "auto" else "")
    elif compute == "metal":
        why = "torch's Metal (MPS) is not available here"
    elif compute == "cpu":
        why = "the setting is CPU"
    if device == "cpu":
        # float32 weights; the encoder multiplies in bfloat16 inside autocast where the CPU has it
        return Placement("cpu", "float32", why)
    return Placement(device, "float16" if half else "float32")


def _ctranslate2(compute: str, m: Machine) -> Placement:
    if compute in ("auto", "cuda") and m.ct2_cuda:
        return Placement("cuda", "int8_float16")
    why = {
        "auto": "CTranslate2 finds no CUDA device",
        "cuda": "CTranslate2 finds no CUDA device",
        "metal": "CTranslate2 has no Metal backend",
        "cpu": "the setting is CPU",
    }[compute]
    return Placement("cpu", "int8", why)


def _onnx(compute: str, m: Machine) -> Placement:
    if compute in ("auto", "cuda") and "CUDAExecutionProvider" in m.onnx_providers:
        return Placement("cuda", "float32", providers=("CUDAExecutionProvider",) + CPU_PROVIDERS)
    why = {
        "auto": "this onnxruntime has no CUDA provider (onnxruntime-gpu)",
        "cuda": "this onnxruntime has no CUDA provider (onnxruntime-gpu)",
        "metal": "onnxruntime has no Metal provider (CoreML is not tried for Piper)",
        "cpu": "the setting is CPU",
    }[compute]
    return Placement("cpu", "float32", why, providers=CPU_PROVIDERS)


# ---- what this machine has ----------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def probe_machine(torch: bool = True) -> Machine:
    """Asks each library once; a library that cannot answer counts as CPU only (logged).
    `torch=False` leaves torch out (its placements then say CPU): importing it takes seconds,
    and only Mini-Omni uses it."""
    return Machine(
        platform=sys.platform,
        torch_cuda=torch and _ask(_torch_cuda),
        torch_mps=torch and _ask(_torch_mps),
        cpu_bf16=torch and _ask(_cpu_bf16),
        llama_gpu=_ask(llama_gpu_backend, None),
        ct2_cuda=_ask(_ct2_cuda),
        onnx_providers=_ask(_onnx_providers, CPU_PROVIDERS),
    )


def _ask(question: Callable, otherwise=False):
    try:
        return question()
    except Exception:  # a broken or missing library: that device is not there
        log.warning("could not ask %s; counting it as not there", question.__name__, exc_info=True)
        return otherwise


def _torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _torch_mps() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _cpu_bf16() -> bool:
    import torch

    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _ct2_cuda() -> bool:
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


def _onnx_providers() -> tuple[str, ...]:
    import onnxruntime

    return tuple(onnxruntime.get_available_providers())


def llama_gpu_backend() -> str | None:
    """The name of the backend llama.cpp offloads to (CUDA, Metal, Vulkan, ROCm's "ROCm"/"HIP",
    ...), read from ggml's device list; None when this build has only the CPU."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return None
    llama_cpp.llama_backend_init()
    lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    names = [n for n in os.listdir(lib) if n.startswith("libggml.") or n == "ggml.dll"]
    ggml = ctypes.CDLL(os.path.join(lib, sorted(names, key=len)[0]))
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    ggml.ggml_backend_dev_type.restype = ctypes.c_int
    ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_reg_name.restype = ctypes.c_char_p
    ggml.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    for i in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(i)
        if ggml.ggml_backend_dev_type(device) in (_GGML_DEVICE_GPU, _GGML_DEVICE_IGPU):
            return ggml.ggml_backend_reg_name(ggml.ggml_backend_dev_backend_reg(device)).decode()
    return "GPU"  # offload is supported but no device is listed: say so without guessing a name


# ---- starting a model where the plan says, or on the CPU ------------------------------------

T = TypeVar("T")


def start_on_device(
    name: str, placement: Placement, start: Callable[[Placement], T], notices: list[str]
) -> tuple[T, Placement]:
    """`start(placement)` (which loads the model and runs it once); when that fails on a GPU, the
    same on the CPU, with one notice in `notices` naming the cause and the fix. A failure on
    the CPU is the caller's to report."""
    try:
        return start(placement), placement
    except Exception as error:
        if not placement.on_gpu:
            raise
        cause, fix = gpu_failure(error)
        log.warning("%s could not start on %s; starting it on the CPU", name, placement.device, exc_info=True)
        notices.append(f"{name} runs on the CPU: {cause} on {placement.device}; {fix}")
        fallback = placement.on_cpu(cause)
        return start(fallback), fallback


def gpu_failure(error: BaseException) -> tuple[str, str]:
    """(cause, fix) of a model failing to start on a GPU, in words for the user."""
    text = f"{type(error).__name__}: {error}"
    low = text.lower()
    if "out of memory" in low or "outofmemory" in low:
        return (
            "out of GPU memory",
            "close other programs using the GPU, pick a smaller model, or choose CPU in Settings",
        )
    if "cublas" in low or "cudnn" in low or "libcudart" in low or ("cuda" in low and ".so" in low) or ".dll" in low:
        return (
            "a CUDA library is missing (" + _first_line(error) + ")",
            "install CUDA 12's cuBLAS and cuDNN 9 (pip install nvidia-cublas-cu12 nvidia-cudnn-cu12), "
            "or choose CPU in Settings",
        )
    if "mps" in low and ("not implemented" in low or "not currently implemented" in low or "unsupported" in low):
        return (
            "an operation Metal (MPS) lacks (" + _first_line(error) + ")",
            "update torch, or set PYTORCH_ENABLE_MPS_FALLBACK=1, or choose CPU in Settings",
        )
    if "llama.cpp could not" in low:
        return (
            _first_line(error) + ", most often for want of GPU memory",
            "close other programs using the GPU, pick a smaller quantization, or choose CPU in Settings",
        )
    if "not compiled with cuda" in low:
        return "this torch build has no CUDA", "install a CUDA build of torch, or choose CPU in Settings"
    return _first_line(error), "choose CPU in Settings to stop trying the GPU"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:160]


def torch_dtype(placement: Placement):
    import torch

    return getattr(torch, placement.number_format)
