"""Typed errors whose message is one line naming the file and the problem."""

from __future__ import annotations

import os
import unicodedata

#: Characters escaped in messages besides the control characters: line and
#: paragraph separators and the bidirectional overrides (they reorder text).
_ALSO_ESCAPED = {"\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\x1b``, ``\\u2028``).

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        One line of printable text; other characters (µ, ä, spaces) are kept.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _ALSO_ESCAPED:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def display_name(name: str | os.PathLike) -> str:
    """A file name as messages show it: as given, control characters escaped.

    Parameters
    ----------
    name : str or path-like
        A file name (paths are shown as given; callers pass ``path.name``).

    Returns
    -------
    str
        The name on one line: a newline in a name becomes ``\\n``.
    """
    return escape_controls(os.fspath(name) if isinstance(name, os.PathLike) else str(name))


def named_message(source: str | os.PathLike, problem: str) -> str:
    """``"<file name>: <problem>"``, the name escaped and written once.

    A ``problem`` that starts with the name already (a message passed on)
    is not prefixed again; control characters in ``problem`` are escaped too.
    """
    label = display_name(source)
    problem = escape_controls(str(problem))
    if problem.startswith(f"{label}: "):
        problem = problem[len(label) + 2:]
    return f"{label}: {problem}"


class BBBError(Exception):
    """Base class of every error bbbcore raises on purpose."""


class ImageReadError(BBBError):
    """An input file is not a usable image.

    The message is one line: ``"<file name>: <problem>"`` so that the CLI and the
    dashboard can show it as it is.
    """

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(named_message(self.source, problem))

    def __reduce__(self):  # picklable: raised in a worker process, shown by the main one
        return type(self), (self.source, self.problem)


class AnnotationError(BBBError):
    """An annotation file cannot be turned into truth cells."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(named_message(self.source, problem))

    def __reduce__(self):  # picklable: raised in a worker process, shown by the main one
        return type(self), (self.source, self.problem)


class ModelCardError(BBBError):
    """A model file or card is missing, invalid, or does not fit an image."""


def read_input(path: str | os.PathLike, error: type, *, label: str, kind: str) -> bytes:
    """A file's bytes, or ``error(label, problem)`` with one line: not found, a folder, unreadable.

    ``kind`` names what the file should be ("an image file", "a table file") in the folder message.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise error(label, "file not found") from None
    except IsADirectoryError:
        raise error(label, f"is a folder, not {kind}") from None
    except OSError as exc:
        raise error(label, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
