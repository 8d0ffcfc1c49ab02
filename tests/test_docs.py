"""The docs are tested: the two commands, every command and function documented and helped."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from addin.cli import app
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_readme_opens_with_the_two_commands() -> None:
    first = code_blocks(README, "bash")[0].strip().splitlines()
    commands = [line for line in first if line and not line.startswith("#")]
    assert len(commands) == 2
    demo, tests = commands
    assert demo.startswith("python3 -m venv .venv && ") and demo.endswith("relationship demo")
    assert tests.startswith("python3 -m venv .venv && ") and "pytest" in tests
    # the first thing in the README after the title and one line of pitch is that block
    assert README.index("```bash") < README.index("\n## ")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == tests, ".ci/run must run exactly the README's test command"


def _commands(group: typer.Typer) -> list[tuple[str, object]]:
    """(full command path, click command) for every leaf command of the CLI."""
    root = get_command(group)
    out = []

    def walk(cmd, prefix: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            out.append((prefix, cmd))

    walk(root, "")
    return out


COMMANDS = _commands(app)


def test_the_cli_has_the_promised_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {
        "classify",
        "demo",
        "rules export",
        "rules check",
        "templates",
        "addin install",
        "addin status",
    } <= names


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_every_command_is_in_the_readme_and_has_help_with_an_example(name: str) -> None:
    assert f"relationship {name}" in README, f"README does not mention 'relationship {name}'"
    result = runner.invoke(app, [*name.split(), "--help"])
    assert result.exit_code == 0
    help_text = dict(COMMANDS)[name].help or ""
    assert len(help_text.strip()) > 20, f"{name} has no help text"
    assert "Example" in help_text, f"{name} --help shows no example"


def _udf_names() -> list[str]:
    import udfs.functions as functions

    return sorted(
        name
        for name, obj in vars(functions).items()
        if callable(obj)
        and name.isupper()
        and not name.startswith("_")
        and getattr(obj, "__module__", "") == functions.__name__
    )


def test_every_excel_function_is_in_the_readme_with_a_description() -> None:
    names = _udf_names()
    assert {
        "RELATIONSHIP_TYPE",
        "CLIENT_SCORE",
        "RELATIONSHIP_REASONS",
        "CONVERSION_TIPS",
        "BUYER_TYPE",
        "BUSINESS_MODEL",
        "CLASSIFY_TABLE",
        "RELATIONSHIP_RULES",
    } <= set(names)
    import udfs.functions as functions

    for name in names:
        assert f"{name}(" in README, f"README does not show {name}(...)"
        doc = (getattr(functions, name).__doc__ or "").strip()
        assert doc and len(doc.splitlines()[0]) < 255, f"{name} needs a one-line description"


@pytest.mark.parametrize("i", range(len(code_blocks(README, "python"))))
def test_readme_python_examples_run(i: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = code_blocks(README, "python")[i]
    exec(compile(source, f"README.md python block {i + 1}", "exec"), {"__name__": "__readme__"})


def test_readme_mentions_every_result_column_and_field() -> None:
    from relationships.engine import RESULT_COLUMNS
    from relationships.rulebook import default_rulebook

    for col in RESULT_COLUMNS:
        assert f"`{col}`" in README
    for f in default_rulebook().fields:
        assert f"`{f.name}`" in README


def test_no_secret_or_machine_paths_in_docs() -> None:
    assert "/work/" not in README and os.path.expanduser("~") + "/" not in README
