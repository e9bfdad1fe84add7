"""Every refusal staff can meet says first, in Chinese, what happened and what to do next; English may
follow in brackets and the stable ``code=`` stays English (issue 14, item 12).

The check reads the source rather than running every refusal: each message passed to ``Refused``,
``NotApplied`` or ``Unreachable`` in the packages staff meet must have a Chinese character as the
first letter of its literal text (placeholders and punctuation before it are fine: ``f"{path} 已存在"``).
A message built elsewhere (``str(exc)``) is listed below with where its Chinese comes from, so a new
one is looked at rather than slipping through.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from replica.rejection_words import explain, explained
from sanji.cli import main

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hub", "node", "replica", "present", "sanji")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")  # f-string parts are "{}" here; str.format ones keep their names
OUTCOMES = {"Refused", "NotApplied", "Unreachable"}
# Errors of sync/ that reach staff through a refusal (`node report` turns them into Refused).
SYNC_STAFF_ERRORS = {"InspectionError", "StaffRuleError"}

# Messages made elsewhere, by file and expression: where each one's Chinese comes from.
BUILT_ELSEWHERE = {
    ("hub/service.py", "verdict.reason"),  # sync/admission.py: every reason is Chinese first
    ("node/commands.py", "str(exc)"),  # AcceptanceError and InvalidIdentity (sync/), both Chinese
    ("node/enrolment.py", "str(exc)"),  # protocol/enrolment.py parse_token: Chinese for typed tokens
    ("node/hubkeys.py", "str(exc)"),  # protocol/hubkeys.py check_current: Chinese
    ("node/inspection.py", "str(exc)"),  # sync/inspection.py InspectionError: checked below
    ("node/usb_files.py", "page.problem"),  # node/feed_quarantine.py: Chinese
    ("node/staff_accounts.py", "str(exc)"),  # sync/staff_rules.py StaffRuleError: checked below
    ("node/staff_reset.py", "CHANGED_MEANWHILE"),  # node/staff_password.py: "修改期间该账户已被…"
    ("node/staff_reset.py", "staff_accounts.UNKNOWN.format(user)"),  # node/staff_accounts.py: "本站没有用户名为…"
    ("hub/staff.py", "str(exc)"),  # sync/staff_rules.py StaffRuleError: checked below
}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level string constants, so ``Refused(ADDRESS_REQUIRED.format(...))`` is checked too."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _literal(arg: ast.expr, constants: dict[str, str]) -> str | None:
    """The message's literal text with placeholders as ``{}``, or None when it is made elsewhere."""
    while isinstance(arg, ast.BinOp):  # "..." + ", ".join(...): the sentence starts on the left
        arg = arg.left
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "format":
        arg = arg.func.value
    if isinstance(arg, ast.Name):
        return constants.get(arg.id)
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in arg.values)
    return None


def chinese_first(text: str) -> bool:
    """The first letter is a CJK ideograph (``{number}：`` before it is fine; ``--check`` is not)."""
    for ch in PLACEHOLDER.sub("", text):
        if ch.isalpha():
            return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
    return False  # no words of its own at all, e.g. f"{number}: {exc}"


def _messages(path: Path, names: set[str]) -> list[tuple[int, ast.expr, dict[str, str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    constants = _constants(tree)
    return [
        (node.lineno, node.args[0], constants)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) in names and node.args
    ]


def _scan(paths: list[Path], names: set[str]) -> tuple[list[str], set[tuple[str, str]], int]:
    english, elsewhere, checked = [], set(), 0
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        for line, arg, constants in _messages(path, names):
            text = _literal(arg, constants)
            if text is None:
                elsewhere.add((rel, ast.unparse(arg)))
            elif not chinese_first(text):
                english.append(f"{rel}:{line}: {text[:80]}")
            checked += 1
    return english, elsewhere, checked


def test_the_rule_tells_chinese_from_english() -> None:
    assert chinese_first("区局没有编号为 {} 的办件 (no application)")
    assert chinese_first("{}：{} 不需要现场踏勘")
    assert chinese_first("「{item}」需现场踏勘，请填写地址")
    assert not chinese_first("no application numbered {} at the hub")
    assert not chinese_first("--valid-days 至少为 1")
    assert not chinese_first("{}: {}")


def test_every_refusal_staff_can_meet_starts_in_chinese() -> None:
    paths = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    english, elsewhere, checked = _scan(paths, OUTCOMES)
    assert checked > 150  # the scan found the refusals (a rename of the classes would hide them)
    assert english == []
    assert elsewhere - BUILT_ELSEWHERE == set(), "a message made elsewhere: check it is Chinese, then list it"
    assert BUILT_ELSEWHERE - elsewhere == set(), "a listed message is gone: drop it from the list"


def test_sync_errors_that_reach_staff_start_in_chinese() -> None:
    english, elsewhere, checked = _scan(sorted((ROOT / "sync").rglob("*.py")), SYNC_STAFF_ERRORS)
    assert checked >= 6 and english == [] and elsewhere == set()


def test_protocol_codes_are_explained_in_words_and_kept() -> None:
    said = explain("bad_signature", "signature does not verify")
    assert chinese_first(said) and said.endswith("(signature does not verify)")
    assert explain("no_such_code", "as it was") == "as it was"  # nothing invented for an unknown code
    assert explain("revoked", "站点 T1 的密钥已被区局吊销") == "站点 T1 的密钥已被区局吊销"  # already in words
    assert explained("malformed: not a Sanji frame").startswith("malformed: 文件或应答的内容无法解读")


def test_a_junk_file_on_the_stick_is_refused_in_words_with_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = tmp_path / "hub"
    assert main(["hub", "init", str(hub), "--json"]) == 0
    capsys.readouterr()
    junk = tmp_path / "usb" / "batch.sjb"
    junk.parent.mkdir()
    junk.write_bytes(b"hello")
    assert main(["hub", "import", str(hub), str(junk), "--json"]) == 2
    (row,) = json.loads(capsys.readouterr().out)["rejected"]
    assert row["reason"].startswith("rejected: malformed: 文件或应答的内容无法解读")  # the code stays for scripts
