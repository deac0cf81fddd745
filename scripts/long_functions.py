"""List functions longer than N lines of code (docstrings, comments and blank lines not counted).

    python scripts/long_functions.py [--max 60] [paths ...]
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path


def code_lines(source: str) -> set[int]:
    """Line numbers holding code (not only a comment, a docstring or nothing)."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            lines.difference_update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def long_functions(path: Path, limit: int) -> list[tuple[str, int]]:
    source = path.read_text(encoding="utf-8")
    lines = code_lines(source)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = len([i for i in lines if node.lineno <= i <= node.end_lineno])
            if n > limit:
                found.append((f"{path}:{node.lineno} {node.name}", n))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("bbbcore"), Path("dashboard"), Path("pages")])
    parser.add_argument("--max", type=int, default=60)
    args = parser.parse_args()
    files = [f for p in args.paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    found = sorted((item for f in files for item in long_functions(f, args.max)), key=lambda t: -t[1])
    for where, n in found:
        print(f"{n:4d}  {where}")
    print(f"{len(found)} function(s) over {args.max} lines of code")


if __name__ == "__main__":
    main()
