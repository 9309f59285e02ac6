#!/usr/bin/env bash
# Set up everything, then run the whole test suite. "No tests ran" counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
# Tests keep their models beside the checkout, never in the user's own data folder.
export VOICE_COMPANION_DATA="${VOICE_COMPANION_DATA:-$PWD/.cache/data}"
bash scripts/setup.sh --test || exit 1
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
if [[ $code -eq 5 ]]; then
    echo "no tests ran: failing" >&2
    exit 1
fi
exit $code
