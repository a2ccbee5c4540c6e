"""The console's manners: its own version, exit 2 for an unknown command, no Django options in
help, examples in help, and shell completion that knows the commands, actions and choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.completion import bash_script

ROOT = Path(__file__).resolve().parents[2]
SYNTHGATE = Path(sys.executable).parent / "synthgate"


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    if not SYNTHGATE.exists():
        pytest.skip(f"the console script is not installed at {SYNTHGATE}")
    env = {"PATH": "/usr/bin:/bin", "SYNTHGATE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", str(ROOT))
    return subprocess.run([str(SYNTHGATE), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_version_is_synthgates_and_an_unknown_command_exits_2(tmp_path):
    version = run("--version", tmp_path=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("synthgate 0.")

    unknown = run("datasets", tmp_path=tmp_path)
    assert unknown.returncode == 2
    assert "Unknown command: 'datasets'" in unknown.stderr and "Did you mean dataset?" in unknown.stderr


def test_help_hides_djangos_options_and_shows_examples(tmp_path):
    result = run("request", "--help", tmp_path=tmp_path)

    assert result.returncode == 0
    for option in ("--settings", "--pythonpath", "--traceback", "--verbosity", "--no-color"):
        assert option not in result.stdout
    assert "examples:" in result.stdout and "synthgate request create" in result.stdout


def complete(script: str, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (the word being typed)."""
    quoted = " ".join(f"'{word}'" for word in words)
    probe = f'\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _synthgate; echo "${{COMPREPLY[*]}}"'
    return subprocess.run(["bash", "-c", script + probe], capture_output=True, text=True, check=True).stdout.split()


def test_bash_completion_offers_commands_actions_and_choices():
    tree = {"release": {"download": {"--kind": ["data", "datasheet"], "--clobber": []}, "list": {"--json": []}}}
    script = bash_script(tree)

    assert complete(script, "synthgate", "rel") == ["release"]
    assert complete(script, "synthgate", "release", "") == ["download", "list"]
    assert complete(script, "synthgate", "release", "download", "1", "--kind", "d") == ["data", "datasheet"]
    assert complete(script, "synthgate", "release", "download", "1", "--c") == ["--clobber"]
