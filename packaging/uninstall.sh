#!/usr/bin/env bash
# Remove Voice Companion as install.sh put it in place: the files it listed in .installed, then
# the bundle's folder. Your settings, history, voice clips and models stay unless you add --purge.
#   bash uninstall.sh [--purge] [--quiet]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "uninstall: $*" >&2; exit 2; }
purge=0 quiet=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        --quiet) quiet=1 ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) die "unknown option $arg (use --purge or --quiet)" ;;
    esac
done
manifest=$here/.installed
[[ -f $manifest ]] || die "$here was not installed by install.sh (no .installed list): nothing removed"

data_dir=""
if (( purge )); then  # asked before the bundle goes: it knows where the data is
    data_dir=$("$here/voice-companion" data where 2>/dev/null || true)
fi
if (( purge )) && [[ -n $data_dir && -d $data_dir ]]; then
    rm -rf -- "$data_dir"
    (( quiet )) || echo "removed your data in $data_dir"
fi
files=() dirs=()
while read -r kind path; do
    case "$kind" in
        file) files+=("$path") ;;
        dir) dirs=("$path" "${dirs[@]}") ;;  # reversed: the deepest folder first
    esac
done < "$manifest"
for file in "${files[@]}"; do rm -f -- "$file"; done
rm -rf -- "$here"
# The folders install.sh made, if nothing else has been put in them since.
for dir in "${dirs[@]}"; do rmdir -- "$dir" 2>/dev/null || true; done
# The desktop's caches that were there before the install: without the entry and icons now.
for file in "${files[@]}"; do
    case "$file" in
        */applications/voice-companion.desktop)
            [[ -f $(dirname "$file")/mimeinfo.cache ]] && command -v update-desktop-database >/dev/null 2>&1 &&
                { update-desktop-database -q "$(dirname "$file")" 2>/dev/null || true; } ;;
    esac
done

(( quiet )) || echo "uninstalled Voice Companion from $here" \
    "$( (( purge )) || echo "(your data stays; bash uninstall.sh --purge removes it too)")"
