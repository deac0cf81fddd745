"""``python -m bbbcore edit``: correct a labels TIFF from a script (the dashboard's edits, by command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .editing import EditError, apply_edit
from .errors import display_name


class _InOrder(argparse.Action):
    """Collects every edit option into one list, in the order given on the command line."""

    def __call__(self, parser, namespace, values, option_string=None):
        edits = list(getattr(namespace, "edits", None) or [])
        edits.append((self.dest, values))
        namespace.edits = edits


def add_edit(sub) -> None:
    p = sub.add_parser(
        "edit", help="correct a labels TIFF: delete, merge, draw and split cells (applied in the order given)",
        description="Edits run in the order given; ids are those of the labels as edited so far (a drawn or "
                    "split-off cell gets the next free id, printed). Coordinates are x,y in pixels (x = column).",
    )
    p.add_argument("labels", type=Path, help="labels TIFF (0 = no cell, one id per cell)")
    p.add_argument("--out", type=Path, required=True, help="the corrected labels TIFF to write")
    p.add_argument("--delete", dest="delete", action=_InOrder, metavar="IDS", help="cells to remove, e.g. 7 or 7,9")
    p.add_argument("--merge", dest="merge", action=_InOrder, metavar="IDS",
                   help="touching cells to join into one, e.g. 3,4")
    p.add_argument("--draw", dest="draw", action=_InOrder, metavar="POLYGON",
                   help='a new cell\'s outline, x,y points: "10,10 60,12 58,50 12,48"')
    p.add_argument("--split", dest="split", action=_InOrder, metavar="ID:LINE",
                   help='cut a cell along a line drawn across it: "5:10,40 90,42"')
    p.set_defaults(edits=[])


def cmd_edit(args) -> int:
    from .export import read_labels_tiff, write_labels_tiff
    from .io import tiff_pixel_size

    name = display_name(args.labels.name)
    if not args.edits:
        print(f"error: {name}: no edit given (use --delete, --merge, --draw or --split)", file=sys.stderr)
        return 2
    try:
        labels = read_labels_tiff(args.labels)
    except FileNotFoundError:
        print(f"error: {name}: file not found", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {name}: not a readable labels TIFF ({exc})", file=sys.stderr)
        return 2
    # New cells get ids never used in this file, so a deleted cell's id is not given again.
    next_id = [int(labels.max(initial=0)) + 1]
    for option, value in args.edits:
        try:
            labels, said = _apply(labels, option, value, next_id)
        except EditError as exc:
            print(f"error: {name}: --{option} {value}: {exc}; nothing written", file=sys.stderr)
            return 1
        print(f"{name}: --{option} {value}: {said}")
    write_labels_tiff(args.out, labels, pixel_size_um=tiff_pixel_size(args.labels))
    print(f"wrote {display_name(str(args.out))}: {len(np.unique(labels[labels > 0]))} cells")
    return 0


def _apply(labels: np.ndarray, option: str, value: str, next_id: list[int]) -> tuple[np.ndarray, str]:
    """One edit from its option and text; the new labels and what it did, in words. ``next_id``: [the
    first id no cell has had], moved on by the cells it adds."""
    if option in ("delete", "merge"):
        edited, said, _ = apply_edit(labels, option, cells=_ids(value))
        return edited, said
    if option == "draw":
        cells, points = (), _points(value)
    else:
        cell, _, line = value.partition(":")
        cells, points = (_ids(cell)[:1] or [-1]), _points(line)
    edited, said, _ = apply_edit(labels, option, cells=cells, points=points, new_id=next_id[0])
    next_id[0] = max(next_id[0], int(edited.max(initial=0)) + 1)
    return edited, said


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise EditError(f"cell ids are whole numbers separated by commas, not {text!r}") from None


def _points(text: str) -> np.ndarray:
    try:
        points = [tuple(float(v) for v in pair.split(",")) for pair in text.split()]
    except ValueError:
        raise EditError(f'points are x,y pairs separated by spaces ("10,10 60,12 58,50"), not {text!r}') from None
    if any(len(p) != 2 for p in points):
        raise EditError(f'points are x,y pairs separated by spaces ("10,10 60,12 58,50"), not {text!r}')
    return np.array(points, float).reshape(-1, 2)
