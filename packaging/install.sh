#!/usr/bin/env bash
# Install Voice Companion from this unpacked bundle, like any desktop app:
#   the bundle       PREFIX/opt/voice-companion   (as root: /opt/voice-companion)
#   the launcher     PREFIX/bin/voice-companion   (as root: /usr/local/bin)
#   the menu entry   DATA/applications/voice-companion.desktop, icons in DATA/icons/hicolor
# PREFIX is ~/.local (DATA: $XDG_DATA_HOME or ~/.local/share); as root /usr/local (DATA:
# /usr/local/share; --user keeps a user's places for root too). --prefix DIR puts all of it under
# DIR. Installing again replaces the old copy.
# Every file written outside the bundle is listed in the bundle's .installed, which uninstall.sh reads.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "install: $*" >&2; exit 2; }

prefix="" user=0
while (( $# )); do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; prefix=$2; shift 2 ;;
        --user) user=1; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) die "unknown option $1 (use --prefix DIR or --user)" ;;
    esac
done
[[ -x $here/voice-companion && -d $here/_internal ]] || die "run this from the unpacked bundle (no voice-companion beside $0)"

if [[ -n $prefix ]]; then
    mkdir -p "$prefix" || die "cannot create $prefix"
    prefix=$(cd "$prefix" && pwd)
    opt=$prefix/opt; bin=$prefix/bin; data=$prefix/share
elif [[ $(id -u) -eq 0 && $user -eq 0 ]]; then
    opt=/opt; bin=/usr/local/bin; data=/usr/local/share
else
    opt=$HOME/.local/opt; bin=$HOME/.local/bin; data=${XDG_DATA_HOME:-$HOME/.local/share}
fi
target=$opt/voice-companion

if [[ -f $target/uninstall.sh && $target != "$here" ]]; then
    bash "$target/uninstall.sh" --quiet  # the old version's files, exactly; the user's data stays
fi
made=()  # the folders above the bundle made here, outermost first
dir=$opt
while [[ ! -d $dir ]]; do made=("$dir" "${made[@]}"); dir=$(dirname "$dir"); done
if [[ $target != "$here" ]]; then
    mkdir -p "$opt"
    staging=$(mktemp -d "$opt/.voice-companion.XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    cp -a "$here/." "$staging/"
    rm -f "$staging/.installed"
    mv "$staging" "$target"
    trap - EXIT
fi
chmod 755 "$target"

manifest=$target/.installed
: > "$manifest"
for dir in "${made[@]}"; do echo "dir $dir" >> "$manifest"; done
put() {  # put SOURCE DEST MODE: one file outside the bundle, recorded for uninstall.sh with the
         # folders made for it ("dir " lines), so that uninstalling takes out exactly these
    local dir new=()
    dir=$(dirname "$2")
    while [[ ! -d $dir ]]; do new=("$dir" "${new[@]}"); dir=$(dirname "$dir"); done
    mkdir -p "$(dirname "$2")"
    for dir in "${new[@]}"; do echo "dir $dir" >> "$manifest"; done
    install -m "$3" "$1" "$2"
    echo "file $2" >> "$manifest"
}

launcher=$(mktemp)
printf '#!/bin/sh\nexec "%s/voice-companion" "$@"\n' "$target" > "$launcher"
put "$launcher" "$bin/voice-companion" 755
rm -f "$launcher"

entry=$(mktemp)
sed -e "s|^Exec=.*|Exec=$bin/voice-companion|" -e "s|^TryExec=.*|TryExec=$bin/voice-companion|" \
    "$target/share/applications/voice-companion.desktop" > "$entry"
put "$entry" "$data/applications/voice-companion.desktop" 644
rm -f "$entry"
while IFS= read -r icon; do
    put "$target/share/icons/$icon" "$data/icons/$icon" 644
done < <(cd "$target/share/icons" && find hicolor -type f | sort)

# The desktop's caches, where the tools exist (a menu refreshes without them too, later); a cache
# file made here is recorded like the rest, so uninstalling leaves none behind.
refresh() {  # refresh CACHE_FILE COMMAND...
    local cache=$1 had=0
    shift
    command -v "$1" >/dev/null 2>&1 || return 0
    [[ -f $cache ]] && had=1
    "$@" >/dev/null 2>&1 || true
    if (( ! had )) && [[ -f $cache ]]; then echo "file $cache" >> "$manifest"; fi
}
refresh "$data/applications/mimeinfo.cache" update-desktop-database -q "$data/applications"
refresh "$data/icons/hicolor/icon-theme.cache" gtk-update-icon-cache -q -t "$data/icons/hicolor"

echo "installed Voice Companion $(cat "$target/_internal/VERSION" 2>/dev/null) in $target"
echo "start it from the applications menu, or run: $bin/voice-companion"
case ":$PATH:" in *":$bin:"*) ;; *) echo "($bin is not on your PATH: add it to run voice-companion by name)" ;; esac
