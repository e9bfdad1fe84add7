"""What `sanji node sync` tells an inspector about photos, in its human-readable line."""

from __future__ import annotations

from node.cli import _blob_text


def test_sync_says_whether_the_photos_reached_the_hub() -> None:
    assert _blob_text({"complete": 0, "pending": 0, "errors": []}) == ""  # nothing to say for most stations
    assert "照片 4 个已送达区局" in _blob_text({"complete": 4, "pending": 0})
    text = _blob_text({"complete": 1, "pending": 3})
    assert "1 个已送达" in text and "3 个待传" in text and "续传" in text
