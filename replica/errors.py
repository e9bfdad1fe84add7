"""The outcomes the CLI turns into exit codes (see CONTRACT.md): refused (2), unreachable (3), not
applied (1)."""

from __future__ import annotations


class Refused(Exception):
    """Bad input or an action that is not allowed. Exit 2; the message says what and why."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


class Unreachable(Exception):
    """The hub could not be reached. Exit 3; work stays queued."""


class NotApplied(Exception):
    """A command's change was written but did not take effect (the merge kept another value, or the
    change was already held). Exit 1: the command must never report success it did not have."""

    def __init__(self, message: str, *, code: str = "not_applied") -> None:
        super().__init__(message)
        self.code = code
