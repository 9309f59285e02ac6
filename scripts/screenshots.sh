#!/usr/bin/env bash
# The README's screenshots from the real window on an X server (Xvfb), light and dark:
# real turns through the installed models in a simulated room, read back from the server.
#   bash scripts/screenshots.sh [DIR]      (default docs/screenshots; needs Xvfb: setup.sh --test)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots}"
n=77
while [[ -e /tmp/.X11-unix/X$n || -e /tmp/.X$n-lock ]]; do n=$((n + 1)); done
Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill "$xvfb"; wait "$xvfb" 2>/dev/null || true' EXIT
for _ in $(seq 200); do [[ -e /tmp/.X11-unix/X$n ]] && break; sleep 0.05; done
export DISPLAY=":$n" QT_QPA_PLATFORM=xcb
unset WAYLAND_DISPLAY XDG_SESSION_TYPE
.venv/bin/python -m app.cli --screenshot "$out"
.venv/bin/python -m app.cli --screenshot "$out" --dark
