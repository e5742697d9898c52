"""How the client verbs print: tables and colour for people, JSON for scripts."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pydantic import BaseModel

BAR_WIDTH = 24
_COLOURS = {
    "succeeded": "32",
    "failed": "31",
    "canceled": "33",
    "awaiting_input": "36",
    "running": "34",
    "completed": "32",
    "disabled": "31",
    "enabled": "32",
}


def colour_on(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def painted(word: str, stream: TextIO = sys.stdout) -> str:
    code = _COLOURS.get(word)
    return f"\033[{code}m{word}\033[0m" if code and colour_on(stream) else word


def plain(value: Any) -> Any:
    """What --json prints: the API's own JSON for a model, a list of them, or a dict. Only
    the fields the answer had: a list item without `input` prints none, not `"input": null`."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def emit(as_json: bool, value: Any, human: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(plain(value), indent=2))
    else:
        human()


def table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], *, status_column: int = -1
) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        padded = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        if index and 0 <= status_column < len(row):
            # Colour after padding: escape codes must not count towards the width.
            word = row[status_column]
            padded[status_column] = painted(word) + " " * (widths[status_column] - len(word))
        print("  ".join(padded).rstrip())


class ProgressBar:
    """One line redrawn in place on a terminal; a line per change elsewhere. Draws anything
    with a `status` and a `progress` (a job or a batch)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = ""

    def __call__(self, state: Any) -> None:
        fraction = float(state.progress.fraction)
        filled = int(fraction * BAR_WIDTH)
        message = state.progress.message or ""
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = f"{state.status:<9} [{bar}] {fraction:4.0%} {message}"
        if line == self._last:
            return
        self._last = line
        if self._tty:
            width = shutil.get_terminal_size().columns
            print("\r" + line[: width - 1].ljust(width - 1), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._tty and self._last:
            print(file=sys.stderr)
