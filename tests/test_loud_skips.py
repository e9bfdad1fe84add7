"""A test that cannot run says so at the end of the run, with the count and the reason (issue 14 item 20)."""

from __future__ import annotations

from pathlib import Path

from tests.inner_pytest import run_inner_pytest


def test_skipped_tests_are_counted_with_their_reason_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "test_some.py").write_text(
        "import pytest\n"
        "def test_a(): pytest.skip('Chromium is missing')\n"
        "def test_b(): pytest.skip('Chromium is missing')\n"
        "def test_c(): pass\n",
        encoding="utf-8",
    )
    run = run_inner_pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    tail = run.stdout.splitlines()[-4:]
    assert any("2 TESTS DID NOT RUN" in line for line in tail), run.stdout
    assert any("2 skipped: Chromium is missing" in line for line in tail), run.stdout
