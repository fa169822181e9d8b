"""The operator's guide is run, not only read: every pybabel and flask command that
docs/operations.md tells an operator to type runs here, as written, against a scratch copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "operations.md"
# `.venv/bin/<tool> …` up to the end of the line, a closing backtick or a shell comment.
COMMAND = re.compile(r"\.venv/bin/(pybabel|flask)\b([^`#\n]*)")


def guide_commands() -> list[tuple[str, str]]:
    found = {(tool, arguments.strip()) for tool, arguments in COMMAND.findall(GUIDE.read_text(encoding="utf-8"))}
    return sorted(found)


def test_the_guide_names_the_translation_step():
    assert ("pybabel", "-q compile -d translations") in guide_commands()


@pytest.mark.parametrize(("tool", "arguments"), guide_commands())
def test_each_command_in_the_guide_runs_as_written(tmp_path, tool, arguments):
    shutil.copytree(ROOT / "translations", tmp_path / "translations", ignore=shutil.ignore_patterns("*.mo"))
    env = {
        **os.environ,
        "FLASK_APP": str(ROOT / "wsgi.py"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'guide.sqlite'}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    finished = subprocess.run(
        [str(ROOT / ".venv" / "bin" / tool), *arguments.split()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, f"{tool} {arguments}\n{finished.stderr[-2000:]}"
    if tool == "pybabel":
        assert (tmp_path / "translations" / "lt" / "LC_MESSAGES" / "messages.mo").is_file()
