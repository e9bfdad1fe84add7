"""The enrolment slip's QR code: the token (which carries the root fingerprint) for a phone or scanner.

segno writes QR codes with no other dependency and no network, as SVG for printing or as text for a
terminal.
"""

from __future__ import annotations

import io

import segno


def token_qr(token: str) -> segno.QRCode:
    # Medium error correction: a slip gets folded and stamped.
    return segno.make(token, error="m", micro=False)


def terminal_qr(token: str) -> str:
    """The QR code as block characters, for `sanji hub enroll` at a terminal."""
    out = io.StringIO()
    token_qr(token).terminal(out=out, compact=True)
    return out.getvalue()
