"""Draws accessbot's two Teams icons — a shield with a check mark — with nothing but the standard library.

Teams wants a full-colour 192×192 PNG and a 32×32 white-on-transparent outline PNG in the app package. They
are drawn from a few formulas rather than kept as opaque binaries, so anyone can see how they were made and
regenerate the same bytes: the drawing is deterministic (fixed supersampling grid, fixed zlib level).

    python manifest/make_icons.py          # rewrites manifest/color.png and manifest/outline.png
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

Rgba = tuple[int, int, int, int]
Shape = Callable[[float, float], bool]  # (x, y) in the unit square → inside?

BACKGROUND: Rgba = (0x1E, 0x4E, 0x8C, 255)  # the manifest's accentColor, #1E4E8C
SHIELD: Rgba = (255, 255, 255, 255)
CHECK: Rgba = (0x21, 0x8A, 0x47, 255)  # a calm "approved" green
WHITE: Rgba = (255, 255, 255, 255)
CLEAR: Rgba = (0, 0, 0, 0)

_SUPERSAMPLE = 4  # 4×4 samples per pixel: smooth edges, same bytes every run


# ---- shapes, in unit coordinates (0,0 top-left, 1,1 bottom-right) -------------------------------------------


def shield(top: float, bottom: float, half_width: float, centre: float = 0.5) -> Shape:
    """A heraldic shield: arched top, straight sides down to mid-height, then curving in to a point."""
    shoulder = top + 0.45 * (bottom - top)

    def inside(x: float, y: float) -> bool:
        dx = abs(x - centre)
        if dx > half_width or y > bottom:
            return False
        arch = top + 0.06 * (bottom - top) * (dx / half_width) ** 2  # corners a little lower than the crown
        if y < arch:
            return False
        if y <= shoulder:
            return True
        t = (y - shoulder) / (bottom - shoulder)
        return dx <= half_width * (1.0 - t**1.8) ** 0.75

    return inside


def stroke(points: list[tuple[float, float]], width: float) -> Shape:
    """A polyline drawn with a round pen of the given width."""
    segments = list(itertools.pairwise(points))
    radius = width / 2

    def inside(x: float, y: float) -> bool:
        return any(_distance_to_segment(x, y, a, b) <= radius for a, b in segments)

    return inside


def _distance_to_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    vx, vy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy)))
    return math.hypot(x - (ax + t * vx), y - (ay + t * vy))


def ring(outer: Shape, inner: Shape) -> Shape:
    return lambda x, y: outer(x, y) and not inner(x, y)


# ---- rasterising ----------------------------------------------------------------------------------------------


def paint(size: int, background: Rgba, layers: list[tuple[Shape, Rgba]]) -> list[list[Rgba]]:
    """Each pixel is the average of its supersamples, each sample taking the colour of the top-most layer."""
    n = _SUPERSAMPLE
    offsets = [(i + 0.5) / n for i in range(n)]
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            totals = [0.0, 0.0, 0.0, 0.0]
            for oy in offsets:
                for ox in offsets:
                    x, y = (px + ox) / size, (py + oy) / size
                    colour = background
                    for shape, fill in layers:
                        if shape(x, y):
                            colour = fill
                    alpha = colour[3] / 255
                    totals[0] += colour[0] * alpha
                    totals[1] += colour[1] * alpha
                    totals[2] += colour[2] * alpha
                    totals[3] += alpha
            row.append(_average(totals, n * n))
        rows.append(row)
    return rows


def _average(totals: list[float], samples: int) -> Rgba:
    """Alpha-weighted average, so a white edge over transparency stays white rather than turning grey."""
    coverage = totals[3]
    if coverage == 0:
        return CLEAR
    r, g, b = (round(channel / coverage) for channel in totals[:3])
    return (r, g, b, round(255 * coverage / samples))


def png(rows: list[list[Rgba]]) -> bytes:
    """An 8-bit RGBA PNG: signature, IHDR, one zlib IDAT (filter 0 on every row), IEND."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


# ---- the two icons ---------------------------------------------------------------------------------------------


def color_icon() -> bytes:
    """192×192: a white shield with a green check on the accent blue; the symbol keeps Teams' margin."""
    body = shield(top=0.22, bottom=0.80, half_width=0.24)
    check = stroke([(0.395, 0.505), (0.475, 0.585), (0.62, 0.415)], width=0.055)
    return png(paint(192, BACKGROUND, [(body, SHIELD), (check, CHECK)]))


def outline_icon() -> bytes:
    """32×32: the same shield as a white outline with a white check, on a transparent background."""
    outer = shield(top=0.03, bottom=0.97, half_width=0.42)
    inner = shield(top=0.13, bottom=0.84, half_width=0.32)
    check = stroke([(0.31, 0.50), (0.45, 0.63), (0.69, 0.36)], width=0.10)
    return png(paint(32, CLEAR, [(ring(outer, inner), WHITE), (check, WHITE)]))


def main() -> None:
    (HERE / "color.png").write_bytes(color_icon())
    (HERE / "outline.png").write_bytes(outline_icon())


if __name__ == "__main__":
    main()
