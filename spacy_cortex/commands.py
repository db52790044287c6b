"""One way to make a command line: typer apps that take `-h` as well as `--help`, as spaCy's
commands do. Imports typer only (the GPU machine's Python has it; spaCy is not needed)."""
from typing import Callable, Optional

import typer

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


def typer_app(help: Optional[str] = None) -> typer.Typer:
    """A typer app with `-h`, no shell-completion options, and `help` as its description.
    Help is click's plain text (rich_markup_mode None): rich's tables cut option names in
    an 80-column terminal ("--extend-thresh…"); plain text wraps them."""
    return typer.Typer(add_completion=False, help=help, context_settings=HELP_OPTIONS, rich_markup_mode=None)


def run(main: Callable) -> None:
    """Run `main` as a single-command typer app (typer.run, with `-h`)."""
    app = typer_app(main.__doc__)
    app.command()(main)
    app()
