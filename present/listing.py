"""The application listing as text, for ``sanji node applications`` and ``sanji hub applications``
(the rows come from ``replica/listing.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from present.webui import status_label
from sync.inspection import PAUSED_LABEL

EMPTY = "（无办件）"


def application_line(a: Mapping[str, Any], *, accepted_at: bool = True) -> str:
    """One application as a line; the hub also shows when it was accepted."""
    return (
        f"{a['number']}  {status_label(a['status']):<6} {a['item']}  {a['applicant_name']}  "
        + (f"受理 {a['accepted_at']}  " if accepted_at else "")
        + (PAUSED_LABEL if a.get("paused") else f"时限 {a['due_date']}")
    )


def applications_text(d: Mapping[str, Any], *, accepted_at: bool = True) -> str:
    """One line per application (the CLI streams ``application_line`` instead; kept for callers holding
    a list)."""
    return "\n".join(application_line(a, accepted_at=accepted_at) for a in d["applications"]) or EMPTY
