"""Every `python -m spacy_cortex...` command takes -h as well as --help (issue 25, item 14:
`python -m spacy_cortex.evaluation.benchmark -h` said "No such option")."""
import importlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

COMMANDS = [
    "spacy_cortex.training.train", "spacy_cortex.training.convert", "spacy_cortex.training.adapt",
    "spacy_cortex.training.export", "spacy_cortex.training.pack", "spacy_cortex.training.parts",
    "spacy_cortex.evaluation.evaluate", "spacy_cortex.evaluation.tune", "spacy_cortex.evaluation.tune_rel", "spacy_cortex.evaluation.benchmark",
    "spacy_cortex.evaluation.many_labels", "spacy_cortex.evaluation.device_check",
    "spacy_cortex.training.replay", "spacy_cortex.evaluation.adapt_curves",
]


def help_exit_code(module_name: str) -> int:
    """Exit code of `python -m module -h`: in this process for a typer app or an argparse
    main(argv); in a subprocess for a command that builds its CLI under __main__ only."""
    module = importlib.import_module(module_name)
    if hasattr(getattr(module, "app", None), "registered_commands"):
        result = CliRunner().invoke(module.app, ["-h"])
        return result.exit_code
    if "argparse" in vars(module) and hasattr(module, "main"):
        with pytest.raises(SystemExit) as stop:
            module.main(["-h"])
        return stop.value.code
    return subprocess.run([sys.executable, "-m", module_name, "-h"], capture_output=True, timeout=300).returncode


@pytest.mark.parametrize("module_name", COMMANDS)
def test_every_command_takes_short_help(module_name):
    assert help_exit_code(module_name) == 0


@pytest.mark.parametrize("args", [["-h"], ["annotate", "-h"], ["info", "-h"], ["adapt", "-h"], ["adapt", "ner", "-h"],
                                  ["adapt", "textcat", "-h"], ["adapt", "evaluate", "-h"]])
def test_the_main_commands_take_short_help(args):
    from spacy_cortex.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "Usage" in result.output, result.output
