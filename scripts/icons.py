"""Render assets/icon.svg into what the installers want: PNGs in the freedesktop hicolor sizes, a
Windows .ico and a macOS .icns (Qt's own image writers, no other tool).
    python scripts/icons.py OUT_DIR"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

SVG = Path(__file__).resolve().parents[1] / "assets" / "icon.svg"
NAME = "voice-companion"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format_ARGB32)
    image.fill(Qt.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def main(out: Path) -> int:
    app = QGuiApplication([])  # noqa: F841  (the painter needs one)
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"icons: {SVG} is not a valid SVG", file=sys.stderr)
        return 2
    for size in HICOLOR_SIZES:
        folder = out / "hicolor" / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        if not render(renderer, size).save(str(folder / f"{NAME}.png")):
            print(f"icons: could not write {folder / NAME}.png", file=sys.stderr)
            return 1
    scalable = out / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SVG, scalable / f"{NAME}.svg")
    # Qt writes one size per .ico/.icns file; 256 px is the size both systems scale down from.
    for suffix, fmt in ((".ico", "ICO"), (".icns", "ICNS")):
        if not render(renderer, 256).save(str(out / f"{NAME}{suffix}"), fmt):
            print(f"icons: Qt could not write {fmt} here (its imageformats plugin is missing)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python scripts/icons.py OUT_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
