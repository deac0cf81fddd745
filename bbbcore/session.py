"""One open experiment: its files, sample sheet, results and anomaly model.

The object the dashboard, a notebook and scripts drive alike. Every change
writes through to the :class:`~bbbcore.store.Store` (when one is given), so a
page reload or another machine sees the same experiment::

    from bbbcore import AnalysisSession, Store, load_model

    session = AnalysisSession(Store("bbb-data"))
    session.add_file("control_01.tif", open("control_01.tif", "rb").read())
    for step in session.analyse(load_model()):
        print(step.message)
    session.cells()      # one row per cell, sample fields filled in
    session.summary()    # one row per image

No Streamlit here: the dashboard keeps one of these per browser session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import config
from .errors import BBBError
from .features import edited_cells
from .io import LoadedImage, image_names, load_image
from .metadata import (
    NUMERIC_SAMPLE_FIELDS,
    SHEET_COLUMNS,
    SampleSheetError,
    sample_of,
    sample_sheet_for,
    tidy_sheet,
    unmatched_warning,
)
from .pipeline import CORRECTED_BY_HAND, ImageResult, result_from_labels, segment_image
from .results import ResultSet, load_experiment, save_result, stored_result
from .store import ExperimentGone

#: Images and sample sheet of the built-in demo (four 10x ZO-1 images and one 4x).
SAMPLE_DATA_DIR = config.PACKAGE_DIR.parent / "sample_data"


#: Edits of one image that can be taken back (each keeps the image's earlier labels and cells in memory).
EDIT_STEPS = 25


@dataclass
class AnalysisSettings:
    """What an analysis runs with (the same for every image of a run).

    Attributes
    ----------
    model : str, path of the ``.keras`` model
    channel : int, str or None, junction channel (None: automatic; a sample
        sheet's ``channel`` overrides it per image)
    use_nuclei : bool, seed cells from the nuclear channel
    junction_threshold : float or None, see :func:`bbbcore.features.cells_table`
    """

    model: str = str(config.DEFAULT_MODEL)
    channel: int | str | None = None
    use_nuclei: bool = False
    junction_threshold: float | None = None


@dataclass
class Progress:
    """One step of :meth:`AnalysisSession.analyse`: an image started (``done`` False) or finished."""

    index: int
    total: int
    name: str
    done: bool = False
    ok: bool = True
    message: str = ""
    result: ImageResult | None = None
    #: One-line warnings about a finished image (a blank image, ...).
    warnings: list[str] = field(default_factory=list)


@dataclass
class AnomalySettings:
    """The anomaly model of a session (None until fitted or loaded) and how it was fitted."""

    model: object | None = None
    design: str = "improved"
    fit_on: str | None = None
    contamination: float = config.ANOMALY_CONTAMINATION
    seed: int = 0
    #: The stored model of a reopened experiment (zip bytes), read into ``model`` when first needed:
    #: its scores are in the stored cells already, and reading it imports TensorFlow.
    saved: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ImageSettings:
    """What one image is analysed with (see :meth:`AnalysisSession.image_settings`).

    Attributes
    ----------
    channel_names : the image's channels; ``junction`` and ``nuclear`` index them (nuclear None: none)
    channels_how : how the channels were picked ("sample sheet", or the loader's: by name, by content, ...)
    pixel_size_um, pixel_size_source : µm per pixel and where it comes from ("file", "sample sheet", None)
    diameter_given_px, diameter_estimated_px : the cell diameter set in the sheet, and the one estimated
    warnings : one line per doubtful channel pick
    """

    channel_names: list[str]
    junction: int
    nuclear: int | None
    channels_how: str
    pixel_size_um: float | None
    pixel_size_source: str | None
    diameter_given_px: float | None
    diameter_estimated_px: float | None
    warnings: list[str]


def holds_demo_grouping(files: dict[str, bytes], sheet: pd.DataFrame, folder: Path = SAMPLE_DATA_DIR) -> bool:
    """True when every sample image is among ``files`` (same bytes) with the demo's illustrative condition."""
    from .metadata import read_sample_sheet

    demo = read_sample_sheet(folder / "samples.csv")
    if not set(demo["file"]) <= set(files):
        return False
    conditions = dict(zip(sheet["file"], sheet["condition"]))
    return all(files[row.file] == (folder / row.file).read_bytes() and conditions.get(row.file) == row.condition
               for row in demo.itertuples())


@dataclass
class AnalysisSession:
    """One open experiment (or none: results then live in this object only).

    Parameters
    ----------
    store : Store, optional
        Where results are written through to; None keeps them in memory.
    """

    store: object | None = None
    experiment_id: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    results: ResultSet = field(default_factory=ResultSet)
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    #: The settings key each image was analysed with (a changed key means: analyse again).
    analysed_with: dict[str, tuple] = field(default_factory=dict)
    #: True while the demo's illustrative grouping is loaded.
    demo: bool = False
    #: The last run's finished steps and its seconds.
    last_run: tuple[list[Progress], float] | None = None
    #: Cell diameters (px) estimated per image, before or by its analysis (None: none found).
    estimated_diameters: dict[str, float | None] = field(default_factory=dict)
    #: One-line messages for the person (e.g. the experiment was deleted elsewhere); the page shows and clears them.
    notices: list[str] = field(default_factory=list)
    #: The last comparison asked for (features, control, statistic, unit), for the methods paragraph.
    comparison: tuple | None = None
    #: Bumped on every change of results or sample fields: the key of everything derived from them.
    version: int = 0
    #: Bumped when the sample sheet changes from outside a table (a sheet file, the demo, opening):
    #: a table editing it starts afresh.
    sheet_revision: int = 0
    _decoded: dict = field(default_factory=dict, repr=False)
    _scenes: dict = field(default_factory=dict, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    _scale_bars: dict = field(default_factory=dict, repr=False)
    _pictures: dict = field(default_factory=dict, repr=False)
    #: The model being taught from this session's corrections (:class:`bbbcore.finetune.TeachingJob`), if any.
    teaching: object | None = None
    #: This session's id in the store's edit log (which session made an edit).
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    #: Per image: the hand corrections' undo and redo steps (results before each edit, in memory).
    _edits: dict = field(default_factory=dict, repr=False)
    #: Per image: the SHA-256 of the labels this session last read or stored (an edit checks it is still so).
    _seen_labels: dict = field(default_factory=dict, repr=False)
    _tokens: set = field(default_factory=set, repr=False)
    _stored_sheet: pd.DataFrame | None = field(default=None, repr=False)
    _stored_anomalies: tuple | None = field(default=None, repr=False)
    _stored_model: int | None = field(default=None, repr=False)
    _name: str | None = field(default=None, repr=False)
    #: Called with the experiment id whenever another experiment (or none) is open (the dashboard names it
    #: in the URL).
    on_experiment: Callable[[int | None], None] | None = field(default=None, repr=False, compare=False)

    # -- opening, resetting, deleting: one operation ------------------------------------
    def reset(self, experiment_id: int | None = None) -> None:
        """Forget everything held, then open ``experiment_id`` from the store (None: none open).

        Opening loads the stored results; nothing is recomputed.
        """
        fresh = AnalysisSession(self.store)
        fresh._tokens = self._tokens  # uploads already handled stay handled
        fresh.settings = self.settings  # the model and channel chosen stay chosen
        fresh.version, fresh.sheet_revision = self.version + 1, self.sheet_revision + 1
        fresh.on_experiment = self.on_experiment
        fresh.session_id = self.session_id
        fresh.teaching = self.teaching  # a fine-tuning under way goes on whatever experiment is open
        self.__dict__.update(fresh.__dict__)
        if experiment_id is None or self.store is None:
            self._experiment_changed()
            return
        loaded, originals, params = load_experiment(self.store, experiment_id)
        self.experiment_id = experiment_id
        self._name = self.experiment_name()
        self.results = loaded
        self.files = dict(originals)
        self.analysed_with = {name: tuple(p.get("key", ())) for name, p in params.items()}
        self.estimated_diameters = {name: r.diameter_estimated_px for name, r in loaded.results.items()
                                    if r.diameter_estimated_px is not None}
        self._stored_sheet = loaded.sheet.copy()
        stored = self.store.images(experiment_id)
        self._seen_labels = dict(zip(stored["name"], stored["labels_sha"])) if len(stored) else {}
        self.demo = holds_demo_grouping(self.files, loaded.sheet)  # a reload keeps the demo's banner
        stored_model = self.store.anomaly_model(experiment_id)
        if stored_model is not None:
            self.anomaly = AnomalySettings(None, stored_model["design"], stored_model["fit_on"],
                                           stored_model["contamination"], stored_model["seed"],
                                           saved=stored_model["data"])
        self.version += 1
        self._experiment_changed()

    def _experiment_changed(self) -> None:
        if self.on_experiment is not None:
            self.on_experiment(self.experiment_id)

    def open(self, experiment_id: int) -> None:
        """Open a stored experiment (what this session held is dropped; it is saved already)."""
        self.reset(experiment_id)

    def close(self) -> None:
        """Close the experiment (it stays stored) and start empty."""
        self.reset(None)

    def delete_experiment(self) -> None:
        """Delete the open experiment from the store, and start empty."""
        if self.store is not None and self.experiment_id is not None:
            self.store.delete_experiment(self.experiment_id)
        self.reset(None)

    def create_experiment(self, name: str) -> int:
        """Create an empty experiment in the store and open it."""
        created = self.store.create_experiment(name)
        self.reset(created)
        return created

    def ensure_experiment(self, default_name: str | None = None) -> int | None:
        """The open experiment, or a new one holding what this session has analysed so far.

        The name is ``default_name`` (default: "Experiment <date time>"),
        with `` (2)``, `` (3)``... when another session took it first.
        """
        if self.experiment_id is not None or self.store is None:
            return self.experiment_id
        self.experiment_id = self.store.create_unique_experiment(
            default_name or time.strftime("Experiment %Y-%m-%d %H:%M"))
        self._name = self.experiment_name()
        self._experiment_changed()
        self._save_everything()
        return self.experiment_id

    def _save_everything(self) -> None:
        """Every result, its sample fields and its exclusions, into the open experiment."""
        for name, result in self.results.results.items():
            key = self.analysed_with.get(name, ())
            params = self.params(name) if key == self.settings_key(name) else {"key": list(key)}
            save_result(self.store, self.experiment_id, result, self.files[result.name], params,
                        sample=sample_of(self.results.sheet, result.name))
            reasons = result.cells.get("excluded_reason", pd.Series(dtype=object))
            for reason, ids in result.cells.groupby(reasons.where(reasons != "", None))["cell_id"]:
                self.store.exclude(self.experiment_id, name, reason, cell_ids=[int(i) for i in ids])
        self._stored_sheet = self.results.sheet.copy()

    def _write_through(self, write: Callable[[], object]) -> None:
        """Run a store write; when the experiment was deleted elsewhere, save everything into a new one.

        The session keeps its results either way, and says once, in :attr:`notices`, where they went.
        """
        if self.store is None or self.experiment_id is None:
            return
        try:
            write()
        except ExperimentGone:
            lost = self._name or f"experiment {self.experiment_id}"
            self.experiment_id = self.store.create_unique_experiment(f"{lost} (restored)")
            self._name = self.experiment_name()
            self._experiment_changed()
            self._save_everything()
            self.notices.append(f"The experiment {lost!r} was deleted in another session; its "
                                f"{len(self.results)} analysed image(s) here are saved in {self._name!r}.")

    def experiment_name(self) -> str | None:
        """The open experiment's name (None when none is open or it was deleted elsewhere)."""
        if self.store is None or self.experiment_id is None:
            return None
        table = self.store.experiments()
        names = table.loc[table["id"] == self.experiment_id, "name"]
        return str(names.iloc[0]) if len(names) else None

    def first_time(self, token: object) -> bool:
        """True the first time ``token`` is seen (an uploaded file's id: handle each upload once)."""
        if token in self._tokens:
            return False
        self._tokens.add(token)
        return True

    # -- files and sample fields ---------------------------------------------------------
    def add_file(self, name: str, data: bytes) -> bool:
        """Add or replace an input file; True when it is new or its bytes changed.

        A file with several scenes (CZI scenes, ND2 positions, LIF images, OME
        series) adds one image per scene, ``name#<scene>``.
        """
        known = self._scenes.get(name)
        if known is None or known[0] != data:
            try:
                known = (data, image_names(data, name=name))
            except BBBError:
                known = (data, [name])  # unreadable: decode() says why, once
            self._scenes[name] = known
        changed = False
        for image_name in known[1]:
            changed = self._add_image(image_name, data) or changed
        return changed

    def _add_image(self, name: str, data: bytes) -> bool:
        if self.files.get(name) == data:
            return False
        self.files[name] = data
        for key in [k for k in self._decoded if k[0] == name]:
            del self._decoded[key]
        self._scale_bars.pop(name, None)
        self._scale_bars.pop(("label", name), None)
        self.estimated_diameters.pop(name, None)
        self.version += 1
        self.sheet_revision += 1  # a new row in the sample table
        return True

    def channel_for(self, name: str) -> int | str | None:
        """The junction channel of a file: its sample sheet's, else the session's setting."""
        channel = sample_of(self.results.sheet, name).get("channel")
        if channel is None:
            return self.settings.channel
        return int(channel) if str(channel).isdigit() else channel

    def nuclear_channel_for(self, name: str) -> int | str:
        """The nuclear channel of a file: its sample sheet's ("none": none), else "auto"."""
        channel = sample_of(self.results.sheet, name).get("nuclear_channel")
        if channel is None:
            return "auto"
        return int(channel) if str(channel).isdigit() else channel

    def decode(self, name: str) -> LoadedImage | str:
        """The loaded image (decoded once per channel choice), or its one-line error."""
        key = (name, self.channel_for(name), self.nuclear_channel_for(name))
        if key not in self._decoded:
            try:
                self._decoded[key] = load_image(self.files[name], name=name, channel=key[1], nuclear_channel=key[2])
            except BBBError as exc:
                self._decoded[key] = str(exc)
        return self._decoded[key]

    def readable(self) -> dict[str, LoadedImage]:
        """The files that load, by name."""
        decoded = {name: self.decode(name) for name in self.files}
        return {name: item for name, item in decoded.items() if not isinstance(item, str)}

    def unreadable(self) -> dict[str, str]:
        """The files that do not load, with their one-line message."""
        decoded = {name: self.decode(name) for name in self.files}
        return {name: item for name, item in decoded.items() if isinstance(item, str)}

    def merge_sheet(self, sheet: pd.DataFrame, *, source: str | None = None) -> None:
        """Use ``sheet``'s rows for the files it lists (other files keep theirs); stored at once.

        With ``source`` (the sheet's file name), rows naming no file of the session are named in
        :attr:`notices`, as the command line warns.
        """
        if source is not None and (warning := unmatched_warning(source, sheet, self.files)):
            self.notices.append(warning)
        sheet = tidy_sheet(sheet)
        current = self.results.sheet
        kept = current[~current["file"].isin(set(sheet["file"]))]
        self.set_sheet(pd.concat([kept, sheet], ignore_index=True) if len(kept) else sheet)
        self.sheet_revision += 1

    def set_sheet(self, sheet: pd.DataFrame) -> None:
        """Replace the sample sheet (edited in a table); stored when it changed."""
        sheet = tidy_sheet(sheet)
        if sheet.equals(self.results.sheet):
            return
        self.results.sheet = sheet
        self.version += 1
        if self.store is not None and self.experiment_id is not None and not sheet.equals(self._stored_sheet):
            self._write_through(lambda: self.store.update_samples(self.experiment_id, sheet))
            self._stored_sheet = sheet.copy()

    def sheet_for(self, names: list[str]) -> pd.DataFrame:
        """The sample fields of ``names`` (the sheet's, else read from the file names), in that order.

        An empty ``pixel_size_um`` shows the file's own pixel size when it has one.
        """
        current = self.results.sheet
        missing = [n for n in names if n not in set(current["file"])]
        if missing:
            current = pd.concat([current, sample_sheet_for(missing)], ignore_index=True)
        table = tidy_sheet(current[current["file"].isin(names)]).set_index("file").reindex(names).reset_index()
        for index, name in enumerate(names):
            image = self.decode(name)
            if pd.isna(table.loc[index, "pixel_size_um"]) and not isinstance(image, str):
                table.loc[index, "pixel_size_um"] = image.pixel_size_um
        return tidy_sheet(table)

    def set_sample_fields(self, name: str, **fields) -> None:
        """Set sample fields of one image (``channel="ZO-1"``, ``pixel_size_um=0.1``; None empties one); stored."""
        table = self.sheet_for(list(self.files) if name in self.files else [*self.files, name])
        row = table.index[table["file"] == name]
        for key, value in fields.items():
            table[key] = table[key].astype(object)
            table.loc[row, key] = value
        others = self.results.sheet[~self.results.sheet["file"].isin(table["file"])]
        self.set_sheet(pd.concat([others, table], ignore_index=True) if len(others) else table)
        self.sheet_revision += 1  # tables showing the sheet start afresh

    def fill_sheet(self, names: list[str], column: str, value=None, *, down: bool = False) -> int:
        """Set one sample field of many images at once; returns how many rows changed.

        ``down=False`` puts ``value`` in every row of ``names`` ("apply to all"); ``down=True``
        gives each empty cell the nearest value above it, in the order of ``names`` ("fill down").
        A number column takes numbers only (:class:`SampleSheetError` otherwise).
        """
        if column not in SHEET_COLUMNS or column == "file":
            raise SampleSheetError(f"no sample field {column!r} to fill")
        if not down and column in NUMERIC_SAMPLE_FIELDS and value not in (None, ""):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise SampleSheetError(f"{column}: {value!r} is not a number") from None
        table = self.sheet_for(names)
        before = table[column].copy()
        if down:
            table[column] = table[column].astype(object).where(table[column].notna()).ffill()
        else:
            table[column] = [None if value in (None, "") else value] * len(table)
        table = tidy_sheet(table)
        changed = int((~(table[column].astype(object).fillna("\0") == before.astype(object).fillna("\0"))).sum())
        others = self.results.sheet[~self.results.sheet["file"].isin(names)]
        self.set_sheet(pd.concat([others, table], ignore_index=True) if len(others) else table)
        self.sheet_revision += 1  # the table showing the sheet starts afresh, with the new values
        return changed

    def image_settings(self, name: str) -> ImageSettings | None:
        """What one image is analysed with, and where each value comes from (None: unreadable)."""
        image = self.decode(name)
        if isinstance(image, str):
            return None
        sample = sample_of(self.results.sheet, name)
        sheet_size = sample.get("pixel_size_um")
        if sheet_size is not None and sheet_size > 0 and sheet_size != image.pixel_size_um:
            size, source = float(sheet_size), "sample sheet"
        else:
            size, source = image.pixel_size_um, "file" if image.pixel_size_um else None
        chosen = sample.get("channel") is not None or sample.get("nuclear_channel") is not None
        return ImageSettings(
            channel_names=list(image.channel_names), junction=image.junction_channel,
            nuclear=image.nuclear_channel, channels_how="sample sheet" if chosen else image.channels_how,
            pixel_size_um=size, pixel_size_source=source, diameter_given_px=self.diameter_for(name),
            diameter_estimated_px=self.estimated_diameters.get(name), warnings=list(image.warnings),
        )

    def channel_planes(self, name: str) -> list:
        """Each channel of a readable image, normalised to [0, 1] (for thumbnails); [] when unreadable."""
        from .io import normalise

        image = self.decode(name)
        if isinstance(image, str):
            return []
        raw = image.raw if image.raw.ndim == 3 else image.raw[..., None]
        return [normalise(raw[..., c]) for c in range(raw.shape[-1])]

    def diameter_for(self, name: str) -> float | None:
        """The typical cell diameter (px) given for an image in the sample sheet, or None: estimated."""
        diameter = sample_of(self.results.sheet, name).get("diameter_px")
        return float(diameter) if diameter is not None and diameter > 0 else None

    def estimate_diameters(self, model, names: list[str] | None = None) -> dict[str, float | None]:
        """Estimate each readable image's typical cell diameter (px) before analysing it (about a second each).

        See :func:`bbbcore.scale.choose_scale`; an analysis without a given diameter estimates it again.
        """
        from .errors import display_name
        from .pipeline import model_input
        from .scale import choose_scale

        for name, image in self.readable().items():
            if (names is None or name in names) and name not in self.estimated_diameters:
                scale = choose_scale(model_input(image, model.card), model, name=display_name(name),
                                     nuclei=image.nuclei)
                self.estimated_diameters[name] = scale.diameter_estimated_px
                self.sheet_revision += 1  # the table showing them starts afresh
                if scale.warning:
                    self.notices.append(scale.warning)
        return {n: self.estimated_diameters.get(n) for n in (names or self.readable())}

    def scale_bar(self, name: str):
        """The burned-in scale bar of a readable image (:func:`bbbcore.scalebar.find_scale_bar`), or None."""
        from .scalebar import find_scale_bar

        if name not in self._scale_bars:
            image = self.decode(name)
            self._scale_bars[name] = None if isinstance(image, str) else find_scale_bar(image.raw)
        return self._scale_bars[name]

    def scale_bar_label_um(self, name: str) -> float | None:
        """The length its label gives the image's scale bar, in µm, read by tesseract when installed; else None."""
        from .scalebar import read_bar_label

        key = ("label", name)
        if key not in self._scale_bars:
            bar = self.scale_bar(name)
            self._scale_bars[key] = read_bar_label(self.decode(name).raw, bar) if bar is not None else None
        return self._scale_bars[key]

    def pixel_size_for(self, name: str) -> float | None:
        """The pixel size an image is analysed with: its sample sheet's, else its file's, else None."""
        size = sample_of(self.results.sheet, name).get("pixel_size_um")
        if size is not None and size > 0:
            return float(size)
        image = self.decode(name)
        return None if isinstance(image, str) else image.pixel_size_um

    def add_sample_data(self, folder: Path = SAMPLE_DATA_DIR) -> None:
        """The demo: five images (four 10x, one 4x) with an illustrative sample sheet, in a new experiment when none is open.

        The sheet gives their pixel sizes, measured on their scale bars (sample_data/README.md): 0.641 µm/px
        at 10x, 1.600 µm/px for the 4x bbb_rgb_02.
        """
        from .metadata import read_sample_sheet

        if self.experiment_id is None and self.store is not None:
            self.reset(self.store.create_unique_experiment("Sample data (demo)"))
        for path in sorted(folder.glob("*.jpg")):
            self.add_file(path.name, path.read_bytes())
        self.merge_sheet(read_sample_sheet(folder / "samples.csv"))
        self.demo = True

    # -- analysing ----------------------------------------------------------------------
    def settings_key(self, name: str) -> tuple:
        """What makes an image's cells: a changed key means the image is analysed again."""
        s = self.settings
        key = (s.model, self.channel_for(name), s.use_nuclei, s.junction_threshold, self.pixel_size_for(name))
        diameter, nuclear = self.diameter_for(name), self.nuclear_channel_for(name)
        key = key if diameter is None else (*key, diameter)  # as before when estimated: stored results match
        return key if nuclear == "auto" else (*key, f"nuclear {nuclear}")

    def params(self, name: str) -> dict:
        """What produced an image's cells: stored with them, so a reload knows them."""
        s = self.settings
        return {"model": s.model, "channel": self.channel_for(name), "use_nuclei": s.use_nuclei,
                "junction_threshold": s.junction_threshold, "pixel_size_um": self.pixel_size_for(name),
                **({"diameter_px": d} if (d := self.diameter_for(name)) is not None else {}),
                **({"nuclear_channel": n} if (n := self.nuclear_channel_for(name)) != "auto" else {}),
                "key": list(self.settings_key(name))}

    def problems(self) -> dict[str, str]:
        """Every file that cannot be used, once, with its one-line message: unreadable, or failed when analysed."""
        found = {name: message for name, message in self.results.errors.items() if name in self.files}
        found.update(self.unreadable())
        return found

    def run_outcome(self) -> tuple[str, bool] | None:
        """The last run in one line (``done: 18 analysed, 2 failed in 3.1 s``) and whether any file failed.

        Failed counts every file of the session that cannot be used (:meth:`problems`): the unreadable ones
        were never analysed, but the person uploaded them to be.
        """
        if self.last_run is None:
            return None
        steps, seconds = self.last_run
        failed = len(self.problems())
        analysed = f"{sum(step.ok for step in steps)} analysed" + (f", {failed} failed" if failed else "")
        return f"done: {analysed} in {seconds:.1f} s", bool(failed)

    def pending(self) -> list[str]:
        """Readable files not analysed yet, or analysed with other settings."""
        return [n for n in self.readable()
                if n not in self.results.results or self.analysed_with.get(n) != self.settings_key(n)]

    def analyse(self, model, names: list[str] | None = None) -> Iterator[Progress]:
        """Segment and measure ``names`` (default: :meth:`pending`), one :class:`Progress` before and after each.

        A file already stored with the same bytes and settings (under any name)
        is reused, not recomputed. A bad file gets its one-line message and the
        others still run; each finished image is stored at once.
        """
        todo = self.pending() if names is None else list(names)
        self.ensure_experiment()
        started, steps = time.perf_counter(), []
        for index, name in enumerate(todo):
            yield Progress(index, len(todo), name)
            step = self._analyse_one(model, name, index, len(todo))
            steps.append(step)
            yield step
        self.last_run = (steps, time.perf_counter() - started)

    def _analyse_one(self, model, name: str, index: int, total: int) -> Progress:
        image = self.decode(name)
        try:
            if isinstance(image, str):
                raise BBBError(image)
            result = None
            if self.store is not None and self.experiment_id is not None:
                result = stored_result(self.store, self.experiment_id, image, self.files[name], self.params(name))
            if result is None:
                result = segment_image(image, model, pixel_size_um=self.pixel_size_for(name),
                                       diameter_px=self.diameter_for(name), use_nuclei=self.settings.use_nuclei,
                                       junction_threshold=self.settings.junction_threshold)
        except BBBError as exc:
            self.results.fail(name, str(exc))
            return Progress(index, total, name, done=True, ok=False, message=str(exc))
        self._edits.pop(name, None)  # edits made before this analysis are not undone into it
        self._keep(result)
        return Progress(index, total, name, done=True, message=f"{name}: {len(result.cells)} cells in "
                        f"{result.seconds:.1f} s", result=result, warnings=list(result.warnings))

    def replace_labels(self, name: str, data: bytes, labels_name: str) -> ImageResult:
        """Replace an image's cells by a labels TIFF corrected by hand (Fiji); measured again, stored.

        Raises
        ------
        ImageReadError
            Not a labels TIFF, or not the image's size.
        """
        result = result_from_labels(self.results.results[name].image, data, labels_name,
                                    pixel_size_um=self.pixel_size_for(name),
                                    junction_threshold=self.settings.junction_threshold)
        self._edits.pop(name, None)
        self._keep(result)
        return result

    # -- correcting cells by hand ------------------------------------------------------
    def edit_cells(self, name: str, operation: str, *, cells=(), points=None) -> str:
        """Correct an image's cells: "delete" or "merge" ``cells``, "draw" a cell (``points``: its outline,
        x, y), "split" a cell (``cells``: it, ``points``: the line). The image is measured again and stored
        as its next version, with a line in the store's edit log; the cells changed carry ``edited``.
        Returns what was done, in words.

        Raises
        ------
        EditError
            The edit cannot be made (see :mod:`bbbcore.editing`); nothing changes.
        EditConflict
            Another session changed the image's cells since this one read them; nothing changes.
        """
        from .editing import apply_edit

        result = self.results.results[name]
        steps = self._edit_steps(name, result)
        labels, said, _ = apply_edit(result.labels, operation, cells=cells, points=points, new_id=steps["next_id"])
        corrected = self._corrected(result, labels)
        self._keep(corrected, edit=self._logged(operation, result, corrected, said))  # may stop here: a conflict
        steps["next_id"] = max(steps["next_id"], int(labels.max(initial=0)) + 1)
        steps["undo"] = (steps["undo"] + [(result, said)])[-EDIT_STEPS:]
        steps["redo"] = []
        return said

    def accept_cells(self, name: str, cells) -> str:
        """Mark cells as looked at and right (column ``accepted``): they count as truth, with the edited
        ones, when the model is taught (:meth:`teaching_examples`). Stored and undone like an edit.

        Raises
        ------
        EditError
            An id that is no cell of the image.
        """
        from .editing import EditError, _listed

        result = self.results.results[name]
        ids = sorted({int(c) for c in cells})
        missing = sorted(set(ids) - set(map(int, result.cells["cell_id"])))
        if not ids or missing:
            raise EditError(f"no cell {_listed(missing)} in {name}" if missing else "select the cells to accept first")
        steps = self._edit_steps(name, result)
        table = result.cells.copy()
        table["accepted"] = edited_cells(table, "accepted") | table["cell_id"].astype(int).isin(ids)
        accepted = replace(result, cells=table)
        said = f"accepted cell{'s' if len(ids) > 1 else ''} {_listed(ids)} as right"
        self._keep(accepted, edit={"operation": "accept", "cells": ids, "said": said, "session": self.session_id})
        steps["undo"] = (steps["undo"] + [(result, said)])[-EDIT_STEPS:]
        steps["redo"] = []
        return said

    def models_used(self) -> dict[str, int]:
        """How many images each model segmented (``"name version"``; labels read from a file: their own key)."""
        used: dict[str, int] = {}
        for result in self.results.results.values():
            key = f"{result.model_name} {result.model_version}".strip() or "labels from a file"
            used[key] = used.get(key, 0) + 1
        return used

    def teaching_examples(self) -> list[tuple[str, object, object]]:
        """What the model can be taught from: per image with cells corrected or accepted by hand, its
        name, its loaded image and its labels holding only those cells (0 elsewhere: not annotated)."""
        import numpy as np

        found = []
        for name, result in self.results.results.items():
            chosen = result.cells.loc[edited_cells(result.cells) | edited_cells(result.cells, "accepted"), "cell_id"]
            if len(chosen):
                labels = np.where(np.isin(result.labels, chosen.astype(int).to_numpy()), result.labels, 0)
                found.append((name, result.image, labels.astype(np.int32)))
        return found

    def undo_edit(self, name: str) -> str | None:
        """Take back the image's last edit; what was taken back, in words (None when there is none)."""
        return self._step(name, "undo", "redo")

    def redo_edit(self, name: str) -> str | None:
        """Make again the edit last taken back; what, in words (None when there is none)."""
        return self._step(name, "redo", "undo")

    def revert_edits(self, name: str) -> bool:
        """The image's cells as the model made them, before any hand correction (False when it has none).

        Works from the store's edit log too, so edits of an earlier visit (or another session) can be
        reverted after a reload; the reverting is itself a logged version.
        """
        result = self.results.results[name]
        steps = self._edits.get(name)
        if steps and steps["undo"]:
            original = steps["undo"][0][0]
        else:
            history = self.edit_log(name)
            if not len(history) or history["labels_sha"].iloc[-1] == history["parent_sha"].iloc[0]:
                return False
            original = self._from_stored_labels(result, history["parent_sha"].iloc[0])
        self._keep(original, edit=self._logged("revert", result, original, "reverted to the model's cells"))
        self._edits.pop(name, None)
        return True

    def edit_counts(self, name: str) -> tuple[int, int]:
        """How many edits of the image can be taken back, and made again."""
        steps = self._edits.get(name) or {"undo": [], "redo": []}
        return len(steps["undo"]), len(steps["redo"])

    def edit_log(self, name: str) -> pd.DataFrame:
        """The image's stored versions made by hand (:meth:`bbbcore.store.Store.edits`; empty without a store)."""
        if self.store is None or self.experiment_id is None:
            return pd.DataFrame(columns=["image", "version", "operation", "cells", "said", "session", "at",
                                         "labels_sha", "parent_sha"])
        return self.store.edits(self.experiment_id, name)

    def _edit_steps(self, name: str, result: ImageResult) -> dict:
        if name not in self._edits or self._edits[name]["image"] is not result.image:
            # New ids start past every id the image has had (a deleted cell's id is not given again).
            self._edits[name] = {"image": result.image, "undo": [], "redo": [],
                                 "next_id": int(result.labels.max(initial=0)) + 1}
        return self._edits[name]

    def _step(self, name: str, source: str, target: str) -> str | None:
        steps = self._edits.get(name)
        if not steps or not steps[source]:
            return None
        current = self.results.results[name]
        wanted, said = steps[source][-1]
        done = f"{'undid' if source == 'undo' else 'redid'}: {said}"
        self._keep(wanted, edit=self._logged(source, current, wanted, done))
        steps[source].pop()
        steps[target].append((current, said))
        return done

    def _logged(self, operation: str, before: ImageResult, after: ImageResult, said: str) -> dict:
        """An edit log entry (:meth:`bbbcore.store.Store.save_image`'s ``edit``)."""
        from .editing import touched_cells

        changed = touched_cells(before.labels, after.labels)
        gone = set(map(int, before.cells["cell_id"])) - set(map(int, after.cells["cell_id"]))
        return {"operation": operation, "cells": sorted({*map(int, changed), *gone}), "said": said,
                "session": self.session_id}

    def _from_stored_labels(self, result: ImageResult, labels_sha: str) -> ImageResult:
        """``result`` with the stored labels ``labels_sha`` (the model's, before any edit): measured again."""
        import numpy as np

        from .export import read_labels_tiff
        from .pipeline import measure

        labels = read_labels_tiff(self.store.get_file(labels_sha))
        cells, interfaces = measure(labels, image=result.image, pixel_size_um=result.pixel_size_um,
                                    junction_threshold=self.settings.junction_threshold,
                                    diameter_px=result.diameter_used_px)
        cells["edited"] = False
        cells["accepted"] = False
        source = result.source.replace(f", {CORRECTED_BY_HAND}", "")
        return replace(result, labels=np.asarray(labels, np.int32), cells=cells, interfaces=interfaces,
                       source=source, _outlines=None)

    def _corrected(self, result: ImageResult, labels) -> ImageResult:
        """``result`` with corrected labels: measured again, the changed cells (and those changed before)
        marked ``edited``."""
        import numpy as np

        from .editing import touched_cells
        from .pipeline import measure

        cells, interfaces = measure(labels, image=result.image, pixel_size_um=result.pixel_size_um,
                                    junction_threshold=self.settings.junction_threshold,
                                    diameter_px=result.diameter_used_px)
        # A stored experiment gives every image the column, empty where the image was never corrected.
        before = set(result.cells.loc[edited_cells(result.cells), "cell_id"].astype(int))
        edited = before | {int(i) for i in touched_cells(result.labels, labels)}
        cells["edited"] = cells["cell_id"].astype(int).isin(edited)
        # Accepted cells stay accepted while their pixels are untouched.
        kept = set(result.cells.loc[edited_cells(result.cells, "accepted"), "cell_id"].astype(int)) - edited
        if kept or "accepted" in result.cells:
            cells["accepted"] = cells["cell_id"].astype(int).isin(kept)
        source = result.source if result.corrected_by_hand else f"{result.source}, {CORRECTED_BY_HAND}"
        return replace(result, labels=np.asarray(labels, np.int32), cells=cells, interfaces=interfaces,
                       source=source, _outlines=None)

    def _keep(self, result: ImageResult, *, edit: dict | None = None) -> None:
        """Hold and store ``result``. ``edit`` (a hand correction of a stored image, its log entry): stored
        first, and only if no other session changed the image's cells meanwhile; otherwise nothing changes."""
        if edit is not None:
            self._save(result, self.params(result.name), edit=edit)
        self.results.add(result)
        if result.diameter_estimated_px is not None:
            self.estimated_diameters[result.name] = result.diameter_estimated_px
        self.analysed_with[result.name] = self.settings_key(result.name)
        self.version += 1
        if edit is None:
            self._save(result, self.params(result.name))

    def _save(self, result: ImageResult, params: dict, *, edit: dict | None = None) -> None:
        """Store ``result``; ``edit`` (a hand correction, logged): only if its stored labels are still those
        this session last saw (raises :class:`bbbcore.store.EditConflict` otherwise, nothing saved)."""
        expected = self._seen_labels.get(result.name) if edit is not None else None
        self._write_through(lambda: save_result(self.store, self.experiment_id, result, self.files[result.name],
                                                params, sample=sample_of(self.results.sheet, result.name),
                                                expected_labels_sha=expected, edit=edit))
        if self.store is not None and self.experiment_id is not None:
            self._seen_labels[result.name] = self.store.labels_sha(self.experiment_id, result.name)
        self._stored_sheet = self.results.sheet.copy()

    # -- quality control ------------------------------------------------------------------
    def exclude(self, name: str, reason: str | None, cell_ids=None) -> None:
        """Leave an image (or some of its cells) out of the statistics, with a reason; None includes it again.

        Nothing is deleted: the rows stay, with the reason beside them.
        """
        result = self.results.results[name]
        cells = result.cells.copy()
        if "excluded_reason" not in cells:
            cells["excluded_reason"] = ""
        chosen = cells["cell_id"].isin(list(cell_ids)) if cell_ids is not None else slice(None)
        cells.loc[chosen, "excluded_reason"] = (reason or "").strip()
        cells["is_excluded"] = cells["excluded_reason"] != ""
        self.results.results[name] = replace(result, cells=cells)
        self.version += 1
        self._write_through(lambda: self.store.exclude(self.experiment_id, name, reason, cell_ids=cell_ids))

    # -- anomalies ------------------------------------------------------------------------
    def fit_anomalies(self, *, design: str = "improved", fit_on: str | None = None, seed: int = 0) -> None:
        """Fit the autoencoder on the session's cells (all, or one condition's) and score every cell."""
        from .anomaly import AnomalyModel

        model = AnomalyModel.fit(self.cells(scored=False), design=design, fit_on=fit_on,
                                 contamination=self.anomaly.contamination, seed=int(seed))
        self.anomaly = AnomalySettings(model, design, fit_on, self.anomaly.contamination, int(seed))
        self._store_anomalies()

    def anomaly_model(self):
        """The fitted anomaly model: fitted or loaded here, or the one stored with the experiment; None when none."""
        if self.anomaly.model is None and self.anomaly.saved is not None:
            from .anomaly import model_from_zip

            model = model_from_zip(self.anomaly.saved, name="the stored anomaly model")
            self.anomaly = replace(self.anomaly, model=model, saved=None)
            # Stored already, scores and all: nothing to write back.
            self._stored_anomalies = (self.experiment_id, id(model), self.anomaly.contamination, self.version)
            self._stored_model = id(model)
        return self.anomaly.model

    def use_anomaly_model(self, model) -> None:
        """Score with a saved model (its threshold comes with it)."""
        self.anomaly = replace(self.anomaly, model=model, saved=None, design=model.card.design,
                               contamination=model.card.contamination)
        self._store_anomalies()

    def set_contamination(self, contamination: float) -> None:
        """The share of the fitted cells flagged (moves the threshold; scores stay)."""
        if float(contamination) != self.anomaly.contamination:
            self.anomaly = replace(self.anomaly, contamination=float(contamination))
            self._store_anomalies()

    def _store_anomalies(self) -> None:
        model = self.anomaly.model
        key = (self.experiment_id, id(model), self.anomaly.contamination, self.version)
        if self.store is None or self.experiment_id is None or model is None or key == self._stored_anomalies:
            return
        self._stored_anomalies = key  # first: cells() below calls back here
        self._write_through(lambda: self.store.update_anomalies(self.experiment_id, self.cells()))

        def keep_model() -> None:  # the model itself once, its threshold each time it moves
            from .anomaly import model_zip_bytes

            data = model_zip_bytes(model) if self._stored_model != id(model) else None
            self.store.save_anomaly_model(self.experiment_id, data, design=self.anomaly.design,
                                          fit_on=self.anomaly.fit_on, seed=self.anomaly.seed,
                                          contamination=self.anomaly.contamination)
            self._stored_model = id(model)

        self._write_through(keep_model)

    # -- tables and reports ---------------------------------------------------------------
    def _memoised(self, key: tuple, make: Callable):
        key = (self.version, *key)
        if key not in self._memo:
            self._memo = {k: v for k, v in self._memo.items() if k[0] == self.version}
            self._memo[key] = make()
        return self._memo[key]

    def cells(self, *, scored: bool = True) -> pd.DataFrame:
        """Every cell, sample fields filled in; anomaly columns added once a model is fitted."""
        model = self.anomaly.model if scored else None
        if scored and model is None and self.anomaly.saved is not None:
            stored = self.results.cells()
            # A reopened experiment's stored scores serve until a cell lacks one (it was changed since).
            if len(stored) and ("anomaly_score" not in stored or stored["anomaly_score"].isna().any()):
                model = self.anomaly_model()
        contamination = self.anomaly.contamination

        def make():
            table = self.results.cells()
            if model is not None and len(table):
                table = model.score(table, contamination=contamination)
            return table

        table = self._memoised(("cells", id(model), contamination), make)
        if model is not None:
            self._store_anomalies()  # once per model, threshold and results version
        return table

    def interfaces(self) -> pd.DataFrame:
        """Every interface of every image (:meth:`bbbcore.results.ResultSet.interfaces`), sample fields filled in."""
        return self._memoised(("interfaces",), self.results.interfaces)

    def summary(self) -> pd.DataFrame:
        """One row per image (edge cells left out)."""
        return self._memoised(("summary",), lambda: self.results.summary(cells=self.cells(scored=False)))

    def export_zip(self) -> bytes:
        """Every file of the command line's output folder, zipped (built on request, kept until a change)."""
        return self._memoised(("zip",), self.results.export_zip)

    def export_ready(self) -> bytes | None:
        """The zip of :meth:`export_zip` when it is built for the current results."""
        return self._memo.get((self.version, "zip"))

    def statistics(self, features: tuple[str, ...], control: str, statistic: str = "mean") -> pd.DataFrame:
        """Treated vs control statistics of the session's cells (see :func:`bbbcore.stats.compare_to_control`)."""
        from .stats import compare_to_control

        table = self._memoised(("stats", tuple(features), control, statistic),
                               lambda: compare_to_control(self.cells(), list(features), control,
                                                          statistic=statistic, n_boot=1000))
        unit = table["unit"].iloc[0] if len(table) else "image"
        self.comparison = (list(features), control, statistic, unit)
        return table

    def picture(self, name: str, options: tuple, make: Callable):
        """A rendered picture of an image, kept per image, results version and display options."""
        key = (name, self.version, options)
        if key not in self._pictures:
            if len(self._pictures) > 12:  # a few images x options; pictures are 4 MB each
                self._pictures.clear()
            self._pictures[key] = make()
        return self._pictures[key]

    def thumbnail(self, name: str) -> bytes:
        """A small JPEG of an analysed image with its cells outlined (kept until the results change)."""
        from .report import thumbnail_jpeg

        result = self.results.results[name]
        return self.picture(name, ("thumbnail",), lambda: thumbnail_jpeg(result.image.junction, result.labels))

    def report_html(self, figures: list = (), *, key: tuple = ()) -> str:
        """One self-contained HTML file of the experiment (:func:`bbbcore.report.html_report`): every image
        as a thumbnail with its counts and flags, ``figures``, the last statistics asked for, the methods
        paragraph and the model card's summary. Kept under ``key`` until the results change
        (:meth:`built_report`)."""
        return self._memoised(("report", key), lambda: self._report_html(list(figures)))

    def built_report(self, key: tuple = ()) -> str | None:
        """The report of :meth:`report_html` when it is built for the current results (else None)."""
        return self._memo.get((self.version, "report", key))

    def _report_html(self, figures: list) -> str:
        from .report import html_report
        from .unet import read_card

        summary = self.summary()
        names = self.results.names()
        statistics = self.statistics(*self.comparison[:3]) if self.comparison else None
        card = read_card(self.settings.model)
        about = {"model": f"{card.name} {card.version}", "cell diameter it works at (px)": card.cell_diameter_px,
                 "trained on": ", ".join(map(str, (card.training or {}).get("images", []))),
                 "held-out scores": (card.metrics or {}).get("leave_one_image_out")}
        return html_report(title=self.experiment_name() or "BBB cell analysis", images=summary,
                           thumbnails={n: self.thumbnail(n) for n in names}, figures=figures,
                           statistics=statistics, methods=self.methods_text(), model_card=about)

    def methods_text(self) -> str:
        """The methods paragraph of what this session ran."""
        from .compare import exclusions
        from .report import methods_paragraph
        from .unet import read_card

        table = self.cells()
        features, control, statistic, unit = self.comparison or (None, None, "mean", "image")
        model = self.anomaly_model()
        corrected = [name for name, result in self.results.results.items() if result.corrected_by_hand]
        return methods_paragraph(table, model_card=read_card(self.settings.model), exclusions=exclusions(table),
                                 corrected_images=corrected,
                                 control=control, features=features, statistic=statistic, unit=unit,
                                 anomaly_card=model.card if model is not None else None)

    def experiment_zip(self) -> bytes:
        """The open experiment as one zip that imports on another machine (with the methods paragraph)."""
        return self.store.export_zip(self.experiment_id, methods=self.methods_text())

    def import_experiment(self, data: bytes, *, source: str = "experiment zip") -> int:
        """Import an exported experiment as a new one and open it."""
        imported = self.store.import_zip(data, source=source)
        self.reset(imported)
        return imported

