"""Every error Sanji raises on purpose hangs under one root with a stable code, and the table in
``protocol/errors.py`` lists them all: what a user, a log or an HTTP body sees is matched on that code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import protocol.errors
from protocol.errors import SanjiError, TooLargeError

PACKAGES = ("protocol", "sync", "replica", "node", "hub", "sanji")
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
# Classes that share another's code on purpose: the same failure, met at another place.
SHARED = {"AnswerTooLarge": TooLargeError}


def project_errors() -> list[type[BaseException]]:
    """Every exception class defined in the project's packages (found by importing all their modules)."""
    found: dict[str, type[BaseException]] = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules = [package] + [
            importlib.import_module(info.name) for info in pkgutil.walk_packages(package.__path__, name + ".")
        ]
        for module in modules:
            for obj in vars(module).values():
                if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def documented() -> dict[str, str]:
    """class name -> code, from the table in protocol/errors.py's docstring."""
    rows = re.findall(r"^\| (\w+) +\| (\w+) +\|", protocol.errors.__doc__ or "", re.MULTILINE)
    return {cls: code for cls, code in rows if cls != "class"}


def test_every_error_derives_from_the_root_and_names_its_own_code() -> None:
    errors = project_errors()
    assert len(errors) > 20
    for cls in errors:
        assert issubclass(cls, SanjiError), f"{cls.__module__}.{cls.__name__} is not a SanjiError"
        code = cls.__dict__.get("default_code")
        assert isinstance(code, str) and SNAKE.fullmatch(code), f"{cls.__name__} has no code of its own"


def test_codes_are_unique_but_for_the_documented_shares() -> None:
    owner: dict[str, type[BaseException]] = {}
    for cls in project_errors():
        code = cls.default_code  # type: ignore[attr-defined]
        if cls.__name__ in SHARED:
            assert code == SHARED[cls.__name__].default_code
            continue
        assert code not in owner, f"{cls.__name__} and {owner[code].__name__} both use {code!r}"
        owner[code] = cls


def test_the_table_lists_every_error_and_its_code() -> None:
    actual = {cls.__name__: cls.default_code for cls in project_errors()}  # type: ignore[attr-defined]
    assert len(actual) == len(project_errors()), "two error classes share a name"
    assert documented() == actual


def test_an_instance_takes_its_class_code_unless_told_otherwise() -> None:
    from replica.errors import Refused
    from sync.acceptance import AcceptanceError
    from sync.catalogue import CatalogueError
    from sync.workflow import Status, TransitionError

    assert Refused("no").code == "refused"
    assert Refused("old", code="stale").code == "stale"
    assert CatalogueError("items", "empty").code == "invalid_catalogue"
    assert AcceptanceError("missing_material", "缺少材料").code == "missing_material"
    err = TransitionError("terminal", "已办结", Status.COMPLETED, None)
    assert (err.code, str(err)) == ("terminal", "已办结")
    assert isinstance(err, ValueError)  # still caught where `except ValueError` was written for it
