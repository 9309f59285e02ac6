#!/usr/bin/env bash
# One check of Mini-Omni on a machine's GPU: builds llama.cpp for it if the installed build cannot
# offload (CUDA for the local GPU's architecture, as setup.sh does), runs the Mini-Omni tests,
# runs `bench omni --device DEVICE`, and prints one JSON summary: device, build flags, decode
# steps per second, first audio, codec real-time factor, memory, test result, the issue's GPU
# targets, and what it did not check.
#   bash scripts/gpu-check.sh                    CUDA (an NVIDIA GPU)
#   bash scripts/gpu-check.sh --device cpu       the same checks on the CPU; reuses the installed
#                                                llama.cpp build whatever it is (never rebuilds)
#   options: --quants f16,q4_k_m (the files benched), --turns N, --skip-tests
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda quants=f16,q4_k_m turns=3 tests=1
while (( $# )); do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --quants) quants=$2; shift 2 ;;
        --turns) turns=$2; shift 2 ;;
        --skip-tests) tests=0; shift ;;
        *) echo "gpu-check: unknown option $1 (--device cuda|mps|cpu, --quants, --turns, --skip-tests)" >&2; exit 2 ;;
    esac
done
case "$device" in cuda|mps|cpu) ;; *) echo "gpu-check: --device cuda, mps or cpu" >&2; exit 2 ;; esac
py=.venv/bin/python
[[ -x $py ]] || { echo "gpu-check: no .venv here; run scripts/setup.sh first" >&2; exit 2; }
SETUP_FUNCTIONS_ONLY=1 source scripts/setup.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log() { printf 'gpu-check: %s\n' "$*" >&2; }

built="reused the installed build"
if [[ $device == cuda ]] && ! llama_has_gpu "$py"; then
    args=$(llama_cmake_args)
    [[ -n "$args" ]] || { log "no NVIDIA driver answers or no CUDA toolkit (nvcc) is found: cannot build for CUDA"; exit 1; }
    version=$($py -c 'import llama_cpp; print(llama_cpp.__version__)')
    log "building llama-cpp-python $version with $args"
    CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        $py -m pip install -q --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==$version" >&2
    built="built with $args"
fi

tests_result='"skipped (--skip-tests)"'
if (( tests )); then
    log "running the Mini-Omni tests"
    if $py -m pytest -q -p no:cacheprovider tests/test_omni_*.py >"$work/tests.txt" 2>&1; then ok=true; else ok=false; fi
    tail -1 "$work/tests.txt" >&2
    tests_result=$($py -c 'import json, sys; print(json.dumps({"passed": sys.argv[1] == "true", "summary": sys.argv[2]}))' \
        "$ok" "$(tail -1 "$work/tests.txt")")
fi

log "bench omni --device $device --quants $quants (a full-size random model: minutes)"
$py -m app.cli bench omni --device "$device" --quants "$quants" --turns "$turns" --json >"$work/bench.json"

$py - "$work/bench.json" "$device" "$built" "$tests_result" <<'EOF'
import json
import sys

import llama_cpp

bench = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
device, built, tests = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])


def median(figure):
    return figure.get("median") if isinstance(figure, dict) else None


q4 = bench.get("gguf_q4_k_m", {})
decode = {mode: median(q4.get(f"decode_{mode}", {}).get("steps_per_s")) for mode in ("separate", "joint")}
best = max((v for v in decode.values() if v is not None), default=None)
first_audio = median(q4.get("engine_padded_30s", {}).get("first_audio_ms"))
encoder_ms = median(q4.get("encoder", {}).get("padded_30s_fast", {}).get("ms"))
codec_rtf = median(q4.get("codec", {}).get("streamed_rtf"))
real_time = bench.get("real_time_steps_per_s", 11.72)
summary = {
    "device": device,
    "devices": q4.get("devices"),
    "build": {"llama_cpp": llama_cpp.__version__, "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
              "system_info": llama_cpp.llama_print_system_info().decode().strip(), "this_run": built},
    "tests": tests,
    "q4_k_m_steps_per_s": decode,
    "q4_k_m_x_real_time": round(best / real_time, 2) if best else None,
    "first_audio_ms_after_3s_input": first_audio,
    "encoder_30s_window_ms": encoder_ms,
    "codec_streamed_rtf": codec_rtf,
    "memory_mb": {"peak_rss": q4.get("peak_rss_mb"), "gpu_peak": q4.get("gpu_peak_memory_mb")},
    "targets_for_a_datacenter_gpu": {
        "x_real_time >= 20": bool(best and best / real_time >= 20),
        "first_audio_ms <= 300": bool(first_audio is not None and first_audio <= 300),
        "encoder_ms <= 50": bool(encoder_ms is not None and encoder_ms <= 50),
        "codec_rtf <= 0.05": bool(codec_rtf is not None and codec_rtf <= 0.05),
    },
    "errors": {k: v["error"] for k, v in bench.items() if isinstance(v, dict) and "error" in v},
    "not_checked": [
        "the Mini-Omni tests run their small models where each test places them (the CPU, or a plan "
        "they state); only the benchmark runs on --device",
        "the cascade (faster-whisper, Piper) on the GPU",
        "speed with the real weights (random weights of the real shapes; speed does not depend on values)",
        "answer quality (random weights say nothing)",
        "sustained load, thermal throttling, several GPUs (the plan uses the first)",
    ],
}
print(json.dumps(summary))
EOF
