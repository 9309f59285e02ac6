#!/usr/bin/env bash
# Set up everything, then run the whole test suite. "No tests ran" counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
export VOICE_COMPANION_DATA="${VOICE_COMPANION_DATA:-$PWD/.cache/data}"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
if [[ $code -eq 5 ]]; then
    echo "no tests ran: failing" >&2
    exit 1
fi
exit $code
