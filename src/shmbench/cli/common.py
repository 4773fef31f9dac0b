"""What every command shares: defaults, exit codes, the consoles, the check of outputs."""
from __future__ import annotations

from rich.console import Console

from .._system.outputs import check_writable


#: 256 MiB: the whole default comparison (25 cells) settles in about two minutes on a 2-core VM,
#: where at 1 GiB (``--size 1GiB``, the reference case of the README's tables) its cells got
#: 8 rounds each in 4½ minutes and most did not settle.
DEFAULT_SIZE = "1024x32768"
#: Ten rounds at least: the first number of rounds whose 95% interval of a median drops the
#: extremes (with 6 to 9 it is their whole range, and one slow pass widens it).
DEFAULT_REPEAT = 10
#: Without --budget, a comparison may spend this long on extra rounds, shared among its cells as
#: they come (at least MIN_BUDGET each): a cell clearly behind its group's leader stops early and
#: leaves its share to the cells after it, so the rounds go where they decide the answer.
TOTAL_BUDGET, MIN_BUDGET = 120.0, 4.0
#: And this long at most for second sittings: a contender whose figure did not settle opens again
#: and adds rounds to its first's (``compare.sits_again``); unused when every contender settled.
SECOND_SITTINGS = 40.0
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


class UsageError(Exception):
    """Bad usage: reported as one line, exit code 2."""


def console() -> Console:
    # Piped output gets a width a table fits in, not the 80 columns rich assumes.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def check_outputs(*outputs: tuple[str | None, str]) -> None:
    for path, option in outputs:
        if path:
            check_writable(path, option)
