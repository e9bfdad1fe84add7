"""axe-core in every browser test (issue 19): each page a test leaves, and the one it ends on, is checked
against WCAG 2.0 A/AA and 2.1 A/AA rules, and any violation fails the test with the rule and the element.

How axe gets in without weakening the pages' Content-Security-Policy: the pages allow only their own
scripts, so a `<script>` tag added by a test would be refused (and `bypass_csp` would switch the policy off
for the whole test). Playwright's ``evaluate`` speaks to the browser over the DevTools protocol, which the
policy does not govern, so axe is evaluated that way, page by page, and the policy stays on.

When a page is checked: once it has loaded, at the test's next call into Playwright, before that call runs
(and the page a test ends on, at teardown). Checking from an event handler would run axe while the test
acts on the page, and from the route handler of the next document it hangs (the frame is navigating), so
:func:`watching` wraps the one method every sync Playwright call goes through. A page the test leaves
before it finished loading is never shown to anyone and is not checked; `test_browser_a11y.py` visits
every page on purpose so coverage does not rest on that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import greenlet

try:
    from axe_playwright_python.base import AXE_SCRIPT
except ImportError as e:  # a test that cannot check accessibility must not pass quietly
    raise ImportError(
        "axe-playwright-python is needed by the browser tests (pip install -e '.[test]'): " + str(e)
    ) from None

# WCAG 2.0 and 2.1, levels A and AA: what GB/T 37668-2019 and issue 19 ask for.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_RUN = """async (tags) => {
  if (!window.axe) { return null; }
  const r = await window.axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200)}))}));
}"""


@dataclass
class Watch:
    """The axe results of one browser context: which pages were checked and what was wrong on them."""

    checked: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def check(self, pg: Any) -> list[str]:
        """Run axe on ``pg`` now; record and return the violations (one line per element)."""
        url = pg.url
        if not url.startswith("http://127.0.0.1") or _is_not_html(pg):
            return []
        pg.evaluate(AXE_SCRIPT)
        found = pg.evaluate(_RUN, TAGS)
        if found is None:
            raise AssertionError(f"axe could not be loaded into {url}")
        self.checked.append(url)
        lines = [
            f"{url}: {v['id']} ({v['impact']}, {v['help']}) at {n['target']}: {n['html']}"
            for v in found
            for n in v["nodes"]
        ]
        self.violations += lines
        return lines

    def settle(self, pg: Any) -> None:
        """Check the page if it loaded since the last check and no new page has been asked for since."""
        try:
            self.check(pg)
        except Exception as e:  # the page closed or navigated by itself (a reload): say so, never hide it
            if "closed" not in str(e) and "destroyed" not in str(e) and "navigat" not in str(e):
                self.violations.append(f"{pg.url}: axe could not run: {e}")

    def assert_clean(self) -> None:
        assert not self.violations, "axe found WCAG 2.1 AA violations:\n" + "\n".join(self.violations)


@contextlib.contextmanager
def watching(pg: Any, watch: Watch) -> Iterator[None]:
    """While the test runs, check each page once it has loaded, at the test's next Playwright call."""
    from playwright._impl._sync_base import SyncBase  # the single door of the sync API (pinned playwright)

    test = greenlet.getcurrent()
    state = {"loaded": False, "busy": False}
    original = SyncBase._sync

    def loaded(_: Any) -> None:
        state["loaded"] = True

    def leaving(request: Any) -> None:
        if is_page_request(request):
            state["loaded"] = False

    def _sync(self: Any, awaitable: Any) -> Any:
        if state["loaded"] and not state["busy"] and greenlet.getcurrent() is test:
            state["busy"], state["loaded"] = True, False
            try:
                watch.settle(pg)
            finally:
                state["busy"] = False
        return original(self, awaitable)

    pg.on("load", loaded)
    pg.on("request", leaving)
    SyncBase._sync = _sync  # type: ignore[method-assign]
    try:
        yield
    finally:
        SyncBase._sync = original  # type: ignore[method-assign]


def _is_not_html(pg: Any) -> bool:
    # Images and files opened on their own (a photo, a download) are not pages to check.
    return bool(pg.evaluate("() => document.contentType !== 'text/html'"))


def rule_count(pg: Any) -> int:
    """How many axe rules the four tags select (for the report and the test that pins the set)."""
    pg.evaluate(AXE_SCRIPT)
    return int(pg.evaluate("(tags) => window.axe.getRules(tags).length", TAGS))


def is_page_request(request: Any) -> bool:
    """A new document for a page's main frame: the moment the page now shown is left."""
    try:
        frame = request.frame
    except Exception:  # a service worker's request has no frame; Sanji has none, but never guess
        return False
    return request.resource_type == "document" and frame.parent_frame is None
