#!/usr/bin/env bash
# Set up everything, then open the app (or, with no display, answer the bundled spoken question).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/voice-companion "$@"
