#!/usr/bin/env bash
# Build the desktop app as a one-folder bundle (dist/voice-companion/) and its archive
# (dist/voice-companion-VERSION-linux-x86_64.tar.gz), after scripts/setup.sh.
#   bash scripts/package.sh            build
#   bash scripts/package.sh --native   with the checkout's own llama.cpp (built for this CPU only)
# Nothing is installed into .venv: PyInstaller and the portable llama.cpp live in a build cache
# ($VC_BUILD_CACHE, default ~/.cache/voice-companion-build) and come first on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m== %s\033[0m\n' "$*"; }
py=.venv/bin/python
[[ -x $py ]] || { echo "package: no .venv here: run bash scripts/setup.sh first" >&2; exit 2; }
native=0
case "${1:-}" in
    "") ;;
    --native) native=1 ;;
    *) echo "package: unknown option $1 (use --native or nothing)" >&2; exit 2 ;;
esac

cache=${VC_BUILD_CACHE:-$HOME/.cache/voice-companion-build}
pyinstaller_version=6.22.3
pyinstaller_site=$cache/pyinstaller-$pyinstaller_version
if [[ ! -f $pyinstaller_site/.complete ]]; then
    say "installing PyInstaller $pyinstaller_version into $pyinstaller_site"
    rm -rf "$pyinstaller_site"
    $py -m pip install -q --target "$pyinstaller_site" "pyinstaller==$pyinstaller_version"
    touch "$pyinstaller_site/.complete"
fi

# llama.cpp for any x86-64 CPU with AVX2 (2013 on; not only the CPU this runs on): no -march=native,
# AVX-512 off. Built once per version and flags, kept in the cache (~5 min on 2 cores).
llama_version=$($py -c 'from importlib.metadata import version; print(version("llama_cpp_python"))')
llama_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF"
llama_key=$(echo "$llama_version $llama_flags" | sha256sum | cut -c1-12)
llama_site=$cache/llama-$llama_version-avx2-$llama_key
if (( native )); then
    llama_site=""
elif [[ ! -f $llama_site/.complete ]]; then
    say "building llama-cpp-python $llama_version portable (AVX2 baseline), once: ~5 min on 2 cores"
    rm -rf "$llama_site" && mkdir -p "$llama_site/wheel"
    # --no-cache-dir: pip's wheel cache does not know CMAKE_ARGS and would hand back the native build.
    CMAKE_ARGS="$llama_flags" $py -m pip wheel -q --no-deps --no-cache-dir -w "$llama_site/wheel" \
        "llama-cpp-python==$llama_version"
    $py -m pip install -q --no-deps --target "$llama_site/site" "$llama_site"/wheel/*.whl
    touch "$llama_site/.complete"
fi

version=$($py -c 'from app.version import version; print(version())')
say "voice-companion $version: icons, licences"
mkdir -p build
$py scripts/icons.py build/icons
$py scripts/licenses.py build/THIRD_PARTY_LICENSES

say "PyInstaller (the default models are re-hashed on the way in)"
PYTHONPATH="${llama_site:+$llama_site/site:}$pyinstaller_site" \
    $py -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller build.spec

bundle=dist/voice-companion
cp packaging/install.sh packaging/uninstall.sh "$bundle/"
mkdir -p "$bundle/share/applications" "$bundle/share/icons"
cp packaging/voice-companion.desktop "$bundle/share/applications/"
cp -r build/icons/hicolor "$bundle/share/icons/"
if [[ -n $llama_site ]] && ! ls "$bundle"/_internal/llama_cpp/lib/libggml-cpu*.so >/dev/null 2>&1; then
    echo "package: the bundle has no llama.cpp CPU library" >&2; exit 1
fi

archive=dist/voice-companion-$version-linux-x86_64.tar.gz
say "archive $archive"
gzip_cmd="gzip -1"
command -v pigz >/dev/null 2>&1 && gzip_cmd="pigz -1"
tar -C dist -cf - voice-companion | $gzip_cmd > "$archive.tmp"
mv "$archive.tmp" "$archive"
du -sh "$bundle" "$archive"
