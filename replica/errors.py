"""The outcomes the CLI turns into exit codes (see CONTRACT.md): refused (2), unreachable (3), not
applied (1). All three hang under ``protocol.errors.SanjiError`` with a stable ``code``."""

from __future__ import annotations

from protocol.errors import SanjiError


class Refused(SanjiError):
    """Bad input or an action that is not allowed. Exit 2; the message says what and why."""

    default_code = "refused"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)


class Unreachable(SanjiError):
    """The hub could not be reached. Exit 3; work stays queued."""

    default_code = "unreachable"


class NotApplied(SanjiError):
    """A command's change was written but did not take effect (the merge kept another value, or the
    change was already held). Exit 1: the command must never report success it did not have."""

    default_code = "not_applied"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
