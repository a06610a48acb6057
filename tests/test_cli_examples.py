"""Every `Example:` in a command's --help parses with that command's own options, and the local ones run as
written, in order, in a fresh folder (export, eval, bench, lint, datasets, make-c, make-p, report, check,
compare, store, doctor); shell completion is offered and completes command names."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from conftest import run_inprocess

# examples that reach the network or need the shared sample: parsed, not run
NOT_RUN = {"datasets fetch": "downloads", "run": "reads the shared sample", "demo": "tested by test_plan_and_options"}
ORDER = (
    "export", "eval", "bench", "lint", "datasets", "make-c", "make-p", "report", "check", "compare", "store list",
    "store recover", "store forget", "doctor",
)  # fmt: skip


def _examples() -> dict[str, list[str]]:
    """{command path: its example's arguments} from every command's help text."""
    import typer.main

    from benchbox.cli import app

    found: dict[str, list[str]] = {}

    def walk(command, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            here = [*path, name]
            for line in (sub.help or "").splitlines():
                if line.strip().startswith("Example: benchbox "):
                    found[" ".join(here)] = shlex.split(line.strip()[len("Example: benchbox ") :])
            walk(sub, here)

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_an_example_that_parses():
    import typer.main

    from benchbox.cli import app

    examples = _examples()
    root = typer.main.get_command(app)
    missing = []
    for name, command in root.commands.items():
        if getattr(command, "commands", None):
            missing += [f"{name} {sub}" for sub in command.commands if f"{name} {sub}" not in examples]
        elif name not in examples:
            missing.append(name)
    assert not missing, f"commands without an example: {missing}"
    for path, args in examples.items():
        command, rest = root, list(args)
        while getattr(command, "commands", None) and rest and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        assert " ".join(args[: len(args) - len(rest)]) == path
        command.make_context(path, rest)  # a misspelt option or a bad value raises here


@pytest.mark.slow
def test_examples_run_as_written(tmp_path):
    from benchbox.datasets.readers import GENERATED_MARKER
    from benchbox.datasets.synthetic import write_image_folder

    write_image_folder(tmp_path / "data" / "val", ["n01440764", "n01443537", "n01484850", "n15075141"], per_class=8)
    (tmp_path / "data" / "val" / GENERATED_MARKER).unlink()
    examples = _examples()
    assert set(examples) == set(ORDER) | set(NOT_RUN)
    for path in ORDER:
        done = run_inprocess(*examples[path], cwd=tmp_path)
        said = done.stdout + done.stderr
        allowed = (0, 1, 2) if path in ("check", "compare", "doctor") else (0, 1)
        assert done.returncode in allowed, f"{path}: exit {done.returncode}\n{said[-3000:]}"
        assert "Traceback" not in said and "No such option" not in said, f"{path}:\n{said[-3000:]}"
    assert (tmp_path / "benchbox-report" / "report.html").is_file()
    assert (tmp_path / "data" / "imagenet-c" / "fog" / "1").is_dir()


def test_shell_completion_is_offered_and_completes_commands():
    env = {**os.environ, "_BENCHBOX_COMPLETE": "complete_bash", "COMP_WORDS": "benchbox comp", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "benchbox.cli"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["compare"], done.stdout + done.stderr
    helped = run_inprocess("--help")
    assert "--install-completion" in helped.stdout and "--show-completion" in helped.stdout
