"""The README and docs: tables rendered from their JSON, none stale, every link to a file of ours alive."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from shmbench.strategies import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def _tables(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shmbench", "tables", "--root", str(root), *args],
                          capture_output=True, text=True)


def test_every_committed_table_is_what_its_json_renders():
    done = _tables("--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_table_edited_by_hand_is_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for json in (ROOT / "docs").glob("*.json"):
        shutil.copy(json, tmp_path / "docs" / json.name)
    readme = tmp_path / "README.md"
    text = readme.read_text()
    edited = re.sub(r"(\| `threads` \| yes \| )[\d.]+×", r"\g<1>9.99×", text, count=1)
    assert edited != text  # the row is there to edit
    readme.write_text(edited)
    done = _tables("--check", root=tmp_path)
    assert done.returncode == 5 and "README.md" in done.stdout + done.stderr
    assert _tables(root=tmp_path).returncode == 0  # rendered again ...
    assert readme.read_text() == text  # ... as committed


def test_the_readme_is_a_front_door_with_every_strategy_in_its_table():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 220
    table = text[text.index("<!-- [[[cog cog.out(results("):]
    rows = {m for m in re.findall(r"^\| `(\w+)` \|", table[:table.index("[[[end]]]")], flags=re.M)}
    assert rows == set(REGISTRY)
    assert "not in this run" not in table[:table.index("[[[end]]]")]


def test_every_link_to_a_file_of_ours_leads_somewhere():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
