"""The real browser the page tests drive: Debian's Chromium, headless, through Playwright
(never a downloaded browser), and axe-core's accessibility check of a page as it is now."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.conftest import NURSE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ROOT = Path(__file__).resolve().parents[2]
AXE_PACKAGE = ROOT / ".node" / "node_modules" / "axe-core"
# The pinned version is scripts/setup-venv's, which installs it.
AXE_VERSION = re.search(  # type: ignore[union-attr]
    r"^\s*axe_version=(\S+)$", (ROOT / "scripts" / "setup-venv").read_text(), re.MULTILINE
).group(1)
INSTALL = (
    f"Install it with: scripts/setup-venv dev "
    f"(it runs: npm install --prefix .node axe-core@{AXE_VERSION})"
)
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# axe's best practices too (one top heading, landmarks, named scroll regions, table headers):
# the pages pass them, and a violation is shown with its tags, so WCAG's and these are told apart.
TAGS = [*WCAG, "best-practice"]
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, tags: v.tags,
    nodes: v.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
  }));
}"""


def axe_script() -> Path:
    """axe.min.js of the pinned axe-core; the test fails (never skips) without it."""
    script = AXE_PACKAGE / "axe.min.js"
    if not script.is_file():
        pytest.fail(f"axe-core is not installed ({script} is missing). {INSTALL}", pytrace=False)
    installed = json.loads((AXE_PACKAGE / "package.json").read_text())["version"]
    if installed != AXE_VERSION:
        pytest.fail(
            f"axe-core {installed} is installed in .node, the pinned version is {AXE_VERSION}. "
            + INSTALL,
            pytrace=False,
        )
    return script


def describe(violations: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for v in violations:
        tags = ", ".join(t for t in v["tags"] if t in TAGS)
        lines.append(f"- {v['id']} ({v['impact']}; {tags}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            lines.append(f"    {' >>> '.join(node['target'])}")
            for reason in str(node["summary"] or "").splitlines():
                lines.append(f"        {reason.strip()}")
    return "\n".join(lines)


async def assert_accessible(page: Page, what: str) -> None:
    """axe-core's WCAG 2.0/2.1 A and AA rules and its best practices on the page as it is now:
    no violations (each one printed: rule, impact, tags, help and the failing nodes)."""
    script = axe_script()
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(script))
    assert await page.evaluate("axe.version") == AXE_VERSION
    violations: list[dict[str, Any]] = await page.evaluate(RUN_AXE, TAGS)
    assert violations == [], (
        f"{what}: {len(violations)} accessibility violation(s):\n{describe(violations)}"
    )


async def sign_in(page: Page, who: tuple[str, str] = NURSE) -> None:
    """Sign in on a staff or family page's form as `who` (user name, password)."""
    await page.get_by_test_id("login-username").fill(who[0])
    await page.get_by_test_id("login-password").fill(who[1])
    await page.get_by_test_id("login-submit").click()
