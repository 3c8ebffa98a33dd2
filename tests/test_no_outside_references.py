"""The repository stands on its own: no file points at a facts file outside it.

WeChat's rules, with their official sources, are in docs/wechat-rules.md; code and docs cite that.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Build output, caches and installed packages (.gitignore), not the repository's own files.
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "__pycache__",
    "instance",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "dist",
    "test-results",
    "node_modules",
}
# Spelled in pieces so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "wechat-" + "platform.md", "/work/" + "shared")


def repository_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in parts):
            continue
        if path.is_file():
            files.append(path)
    return files


def mentions(path: Path) -> list[str]:
    data = path.read_bytes()
    return [word for word in FORBIDDEN if word.encode() in data]


def test_no_file_points_at_a_facts_file_outside_the_repository() -> None:
    files = repository_files()
    assert ROOT / "docs" / "wechat-rules.md" in files and len(files) > 100
    offenders = {str(path.relative_to(ROOT)): found for path in files if (found := mentions(path))}
    assert offenders == {}


def test_the_check_sees_a_mention(tmp_path) -> None:
    sample = tmp_path / "example.py"
    sample.write_text("# rules: see " + "../" + "shared/" + "wechat-" + "platform.md §2\n", encoding="utf-8")
    assert mentions(sample) == ["../" + "shared", "wechat-" + "platform.md"]


def test_the_rules_document_cites_official_pages_and_the_modules_that_enforce_them() -> None:
    text = (ROOT / "docs" / "wechat-rules.md").read_text(encoding="utf-8")
    for section in (
        "## Sending a subscribe message",
        "## Keyword values",
        "## Templates",
        "## Grants",
        "## Error codes",
        "## Access token",
        "## Push events",
        "## Limits and quotas",
    ):
        body = text.split(section, 1)[1].split("\n## ", 1)[0]
        assert "Source" in body and ".html" in body, section
        assert "`dashboard/" in body, section
    # Every module the document names exists.
    for module in set(re.findall(r"`(dashboard/[\w/]+\.py)`", text)):
        assert (ROOT / module).is_file(), module
