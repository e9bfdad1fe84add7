"""Reading the QR code printed on a notice, as a phone would: the notice's inline SVG drawn to pixels
here, then decoded by zxing-cpp (a QR reader from PyPI, no network).

segno draws a QR code as one ``<path>`` of unit-wide horizontal strokes (``M x y`` to start, ``h n`` to
draw n modules, ``m dx dy`` to move), scaled by a ``transform="scale(s)"``. Drawing those strokes module
by module into a white image is all the rendering the test needs; anything else in the SVG is a failure.
"""

from __future__ import annotations

import re

import numpy as np
import zxingcpp

PIXELS_PER_MODULE = 6
_PATH = re.compile(r'<svg width="(\d+)" height="(\d+)"[^>]*>.*?<path transform="scale\((\d+)\)"[^>]* d="([^"]+)"', re.S)
_STEP = re.compile(r"([MmHh])\s*(-?[\d.]+)(?:\s+(-?[\d.]+))?")


def modules(svg: str) -> np.ndarray:
    """The SVG's dark modules as a boolean matrix (the quiet zone included)."""
    found = _PATH.search(svg)
    assert found, "no segno QR path in the notice"
    width, scale, d = int(found.group(1)), int(found.group(3)), found.group(4)
    n = width // scale
    grid = np.zeros((n, n), dtype=bool)
    x = y = 0.0
    for op, a, b in _STEP.findall(d):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:  # h: a stroke along row floor(y)
            length = float(a)
            start, end = sorted((x, x + length))
            grid[int(y), int(start) : int(end)] = True
            x += length
    return grid


def decode(svg: str) -> list[str]:
    grid = modules(svg)
    image = np.where(np.kron(grid, np.ones((PIXELS_PER_MODULE, PIXELS_PER_MODULE))) > 0, 0, 255).astype(np.uint8)
    return [r.text for r in zxingcpp.read_barcodes(image)]
