"""The store from the command line: ``experiments list | export | import | delete`` and ``--experiment NAME``.

The data folder is ``$BBB_DATA_DIR`` (default ``./bbb-data``), the one the dashboard uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import BBBError


def add_experiments(sub) -> None:
    """The ``experiments`` subcommand and its actions."""
    p = sub.add_parser("experiments", help="list, export, import or delete the stored experiments "
                                           "(data folder: $BBB_DATA_DIR, default ./bbb-data)")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every experiment with its images and cells")
    for action, what in (("export", "write one experiment to a zip that imports on another machine"),
                         ("delete", "delete one experiment and the files nothing else uses")):
        a = actions.add_parser(action, help=what)
        a.add_argument("name", nargs="?", default=None, help="the experiment's name")
        a.add_argument("--id", type=int, default=None, help="the experiment's id instead of its name")
        if action == "export":
            a.add_argument("--out", type=Path, required=True, help="the zip to write")
    a = actions.add_parser("import", help="import an exported experiment as a new one")
    a.add_argument("zip", type=Path, help="an experiment zip (exported here or on another machine)")
    a.add_argument("--name", default=None, help="the new experiment's name (default: as exported; ' (2)' if taken)")
    a.add_argument("--max-gb", type=float, default=None,
                   help="refuse a zip expanding to more than this many GB (default: the configured limit)")


def cmd_experiments(args) -> int:
    """Run one ``experiments`` action; a problem raises a BBBError (one line, exit 2)."""
    from .store import Store

    store = Store()
    if args.action == "list":
        table = store.experiments()
        if table.empty:
            print(f"no experiments in {store.folder}")
        for _, row in table.iterrows():
            print(f"{row['id']:>4}  {row['name']}  ({row['n_images']} images, {row['n_cells']} cells, "
                  f"modified {row['modified']})")
        print(f"data folder {store.folder.resolve()}: {store.folder_size() / 2**20:.1f} MB")
        return 0
    if args.action == "import":
        from .exchange import ImportLimits

        limits = ImportLimits() if args.max_gb is None else ImportLimits(max_total_bytes=int(args.max_gb * 2**30))
        new = store.import_zip(args.zip, name=args.name, source=args.zip.name, limits=limits)
        names = store.experiments().set_index("id")
        print(f"imported {args.zip.name} as {names.loc[new, 'name']!r} (id {new}, {names.loc[new, 'n_images']} "
              f"images, {names.loc[new, 'n_cells']} cells)")
        return 0
    chosen = experiment_by(store, args.name, args.id)
    if args.action == "export":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        store.export_zip(chosen, target=args.out)
        print(f"wrote experiment {chosen} to {args.out} ({args.out.stat().st_size / 2**20:.1f} MB)")
        return 0
    before = store.folder_size()
    store.delete_experiment(chosen)
    print(f"deleted experiment {chosen}; {(before - store.folder_size()) / 2**20:.1f} MB freed")
    return 0


def experiment_by(store, name: str | None, experiment_id: int | None) -> int:
    """The id of the experiment named ``name`` (or ``experiment_id`` itself, checked)."""
    if (name is None) == (experiment_id is None):
        raise BBBError("give the experiment's name or --id N (one of them)")
    if experiment_id is not None:
        if experiment_id not in set(store.experiments()["id"]):
            raise BBBError(f"no experiment with id {experiment_id} (see: python -m bbbcore experiments list)")
        return experiment_id
    return store.experiment_id(name)


def add_experiment_option(p: argparse.ArgumentParser) -> None:
    """``--experiment NAME``: also keep the results in the store (the dashboard's experiments)."""
    p.add_argument("--experiment", default=None, metavar="NAME",
                   help="also store the results in this experiment of the data folder ($BBB_DATA_DIR), "
                        "created if missing; the dashboard opens it")


class ExperimentWriter:
    """Saves each image's result into a named experiment as the command goes (created when missing)."""

    def __init__(self, name: str):
        from .store import Store, StoreError

        self.store = Store()
        try:
            self.experiment_id = self.store.experiment_id(name)
        except StoreError:
            self.experiment_id = self.store.create_experiment(name)
        self.name = name
        self.saved = 0

    def save(self, result, original: bytes, params: dict, sample: dict | None) -> None:
        """Store one image's result (one transaction)."""
        from .results import save_result

        save_result(self.store, self.experiment_id, result, original, params, sample=sample)
        self.saved += 1

    def cells(self):
        """The experiment's cells with each image's sample fields (condition, dose, ...)."""
        from .metadata import apply_sample_sheet, tidy_sheet

        images = self.store.images(self.experiment_id)
        return apply_sample_sheet(self.store.cells(self.experiment_id), tidy_sheet(images.rename(columns={"name": "file"})))

    def store_anomalies(self, scored) -> int:
        """Store ``anomaly_score`` and ``is_anomaly`` of the scored cells of this experiment's images."""
        mine = scored[scored["image"].isin(set(self.store.images(self.experiment_id)["name"]))]
        self.store.update_anomalies(self.experiment_id, mine)
        return len(mine)

    def done(self) -> None:
        print(f"stored {self.saved} image(s) in experiment {self.name!r} (id {self.experiment_id}) of "
              f"{self.store.folder}")
