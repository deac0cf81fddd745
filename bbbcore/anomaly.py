"""Anomalous cells: a dense autoencoder on per-cell features.

Two designs:

``"original"`` (the study's): the five columns of the original analysis
(area, perimeter, aspect_ratio, extent, equivalent_diameter), standardised;
Dense 5 -> Dropout 0.2 -> 16 relu -> Dropout 0.2 -> 4 relu -> 2 linear (the
2-D code) -> 4 relu -> 16 relu -> 5 linear; MSE; SGD with momentum; early
stopping and learning-rate reduction on a 20 % validation split. Its flags:
the cells an EllipticEnvelope fitted on the 2-D codes puts outside
(contamination 0.12 in the study).

``"improved"`` (the default): the size columns log-transformed (they are
right-skewed), plus scale-free shape columns (solidity, circularity,
elongation, eccentricity); five such networks side by side, trained together
with Adam, their errors averaged (one alone ranks cells better or worse with
its random start); and beside the reconstruction error, the cell's largest
robust z-score over the features (an autoencoder rebuilds a scaled copy of a
normal cell well, so a very large or very small cell needs the second part).
``anomaly_score`` is the larger of the two, each scaled to 0 at the fitted
cells' median and 1 at their 99th percentile.

With the original design ``anomaly_score`` is the reconstruction error (the
mean squared error over its standardised features). Either way ``is_anomaly`` is the
score above a threshold the user sets as a contamination fraction: the
threshold is that quantile of the scores of the cells the model was fitted
on. Fitting on the control cells only scores treated cells against normal
control shape. Sizes are read in µm when every cell has a pixel size
(:func:`sizes_in_microns`), so images of other magnifications mix. A fitted
model is a ``.keras`` file plus its JSON card.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .errors import BBBError

#: The original analysis's five columns.
ORIGINAL_FEATURES = config.ORIGINAL_FEATURES
#: The improved design's columns, and which of them are log-transformed.
IMPROVED_FEATURES = (*config.ORIGINAL_FEATURES,
                     "solidity", "circularity", "elongation", "eccentricity")
LOG_FEATURES = ("area", "perimeter", "equivalent_diameter", "elongation")
#: The "junctions" design reads these too: shape and the state of the cell's junctions together.
JUNCTION_FEATURES = ("junction_continuity", "junction_perpendicular_fraction", "junction_border_to_cytoplasm",
                     "linearity_mean", "n_vertices")
#: Size columns read in µm when every cell has a pixel size, so that cells of images taken at another
#: magnification compare by their real size (in pixels, a 4x image's cells would all look tiny).
MICRON_SIZES = {"area": "area_um2", "perimeter": "perimeter_um", "equivalent_diameter": "equivalent_diameter_um"}
#: The designs, the default first.
DESIGNS = ("improved", "original", "junctions")
#: The study's contamination.
DEFAULT_CONTAMINATION = config.ANOMALY_CONTAMINATION
#: Fewest cells a model is fitted on, after edge cells and cells with missing
#: or infinite features are left out (1/5 of them is the validation split).
MIN_FIT_CELLS = 20
#: Autoencoders averaged by the improved design (one network, trained together; see build_autoencoder).
ENSEMBLE_MEMBERS = 5
#: Columns added to a cells table.
SCORE_COLUMNS = ("anomaly_score", "is_anomaly", "anomaly_code_1", "anomaly_code_2")


class AnomalyError(BBBError):
    """A cells table that cannot be scored, or an anomaly model that cannot be read."""


@dataclass
class AnomalyCard:
    """What an anomaly model was fitted on and how (JSON beside the ``.keras`` file)."""

    design: str
    features: list[str]
    log_features: list[str]
    mean: list[float]
    scale: list[float]
    threshold: float
    contamination: float
    fitted_on: str
    n_cells: int
    seed: int
    training: dict = field(default_factory=dict)
    envelope: dict = field(default_factory=dict)
    #: Quantiles 0, 0.001, ..., 1 of the fitted cells' scores: thresholds for any contamination.
    score_quantiles: list = field(default_factory=list)
    #: Autoencoders trained side by side (seeds ``seed`` ...); the score averages theirs.
    members: int = 1
    #: Each member's median error on the fitted cells: its errors are divided by it before averaging.
    member_scale: list = field(default_factory=list)
    #: The improved design's second part: per feature, the fitted cells' median and MAD (standardised
    #: values), and the 50th and 99th percentiles of both parts' values on the fitted cells.
    feature_median: list = field(default_factory=list)
    feature_mad: list = field(default_factory=list)
    error_scale: list = field(default_factory=list)
    distance_scale: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "card") -> AnomalyCard:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise AnomalyError(f"{source}: unknown keys {sorted(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise AnomalyError(f"{source}: {exc}") from None


def design_features(design: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns a design reads, and which of them it log-transforms."""
    if design == "original":
        return ORIGINAL_FEATURES, ()
    if design == "improved":
        return IMPROVED_FEATURES, LOG_FEATURES
    if design == "junctions":
        return IMPROVED_FEATURES + JUNCTION_FEATURES, LOG_FEATURES
    raise AnomalyError(f"design must be one of {', '.join(DESIGNS)}, not {design!r}")


def sizes_in_microns(cells: pd.DataFrame, features, log_features) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``features`` and ``log_features`` with their size columns in µm (:data:`MICRON_SIZES`) when every
    cell of ``cells`` has them, else as they are (a single magnification needs no µm: the features are
    standardised, so a constant pixel size changes nothing)."""
    wanted = [MICRON_SIZES[f] for f in features if f in MICRON_SIZES]
    if not wanted or len(cells) == 0 or any(
            c not in cells.columns or not np.isfinite(cells[c].to_numpy(float)).all() for c in wanted):
        return tuple(features), tuple(log_features)
    return (tuple(MICRON_SIZES.get(f, f) for f in features), tuple(MICRON_SIZES.get(f, f) for f in log_features))


def feature_matrix(cells: pd.DataFrame, features, log_features, *, source: str = "cells table") -> np.ndarray:
    """The raw feature matrix (log applied), refusing missing columns and empty tables."""
    missing = [f for f in features if f not in cells.columns]
    if missing:
        raise AnomalyError(f"{source}: missing column(s) {', '.join(missing)} (as written by `segment`)")
    values = cells[list(features)].to_numpy(float, copy=True)
    for index, name in enumerate(features):
        if name in log_features:
            values[:, index] = np.log(np.maximum(values[:, index], 1e-6))
    return values


def build_autoencoder(n_features: int, *, dropout: float = 0.2, seed: int = 0, members: int = 1):
    """The study's dense autoencoder: n -> n -> 16 -> 4 -> 2 (code) -> 4 -> 16 -> n.

    ``members`` > 1 puts that many of them side by side in one network (one input, their
    reconstructions concatenated), each started from its own random weights; the first
    member's code layer is ``code``.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((n_features,), name="features")
    outputs = []
    for member in range(members):
        tag = "" if member == 0 else f"_{member}"
        x = layers.Dense(n_features, activation="relu", name=f"dense_in{tag}")(inputs)
        x = layers.Dropout(dropout, seed=seed + 2 * member, name=f"dropout_1{tag}")(x)
        x = layers.Dense(16, activation="relu", name=f"dense_16{tag}")(x)
        x = layers.Dropout(dropout, seed=seed + 2 * member + 1, name=f"dropout_2{tag}")(x)
        x = layers.Dense(4, activation="relu", name=f"dense_4{tag}")(x)
        code = layers.Dense(2, activation="linear", name=f"code{tag}")(x)
        x = layers.Dense(4, activation="relu", name=f"dense_4_out{tag}")(code)
        x = layers.Dense(16, activation="relu", name=f"dense_16_out{tag}")(x)
        outputs.append(layers.Dense(n_features, activation="linear", name=f"reconstruction{tag}")(x))
    output = outputs[0] if members == 1 else layers.Concatenate(name="reconstructions")(outputs)
    return keras.Model(inputs, output, name="bbb_cell_autoencoder")


class AnomalyModel:
    """A fitted autoencoder with its standardisation and threshold."""

    def __init__(self, keras_model, card: AnomalyCard):
        import keras

        self.keras_model = keras_model
        self.card = card
        self._encoder = keras.Model(keras_model.input, keras_model.get_layer("code").output)

    # -- fitting ---------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        cells: pd.DataFrame,
        *,
        design: str = "improved",
        fit_on: str | None = None,
        contamination: float = DEFAULT_CONTAMINATION,
        seed: int = 0,
        max_epochs: int = 200,
        batch_size: int | None = None,
        source: str = "cells table",
        members: int | None = None,
    ) -> AnomalyModel:
        """Fit on every cell of ``cells`` (edge cells excluded), or on one condition's.

        Parameters
        ----------
        cells : DataFrame with the design's feature columns
        design : "improved" or "original"
        fit_on : str, optional
            A condition: fit on its cells only (then every cell is scored
            against that condition's normal shape).
        contamination : float in (0, 0.5)
            Fraction of the fitted cells above the threshold.
        seed : int
            Same seed, same data: same scores.
        members : int, optional
            Autoencoders averaged (default: 1 for the original design, :data:`ENSEMBLE_MEMBERS`
            for the improved one).
        """
        if not 0 < contamination < 0.5:
            raise AnomalyError(f"contamination must be between 0 and 0.5, not {contamination}")
        features, log_features = sizes_in_microns(cells, *design_features(design))
        pool = _fit_pool(cells, fit_on)
        values = feature_matrix(pool, features, log_features, source=source)
        finite = np.isfinite(values).all(axis=1)
        values = values[finite]
        if len(values) < MIN_FIT_CELLS:
            of = f" of condition {fit_on!r}" if fit_on is not None else ""
            raise AnomalyError(f"{source}: {len(values)} cell(s){of} to fit on; the anomaly model needs at least "
                               f"{MIN_FIT_CELLS} (cells at the image edge and cells with missing or infinite "
                               "values are not fitted)")

        import keras
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        scale[scale == 0] = 1.0
        standard = ((values - mean) / scale).astype(np.float32)

        started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        # The improved design averages several autoencoders: one alone ranks cells well or less well
        # depending on its random start (benchmarks/bench_anomaly.py, seeds 0-4).
        members = members or (1 if design == "original" else ENSEMBLE_MEMBERS)
        network = build_autoencoder(len(features), seed=seed, members=members)
        optimizer = (keras.optimizers.SGD(learning_rate=0.01, momentum=0.9) if design == "original"
                     else keras.optimizers.Adam(learning_rate=3e-3))
        # About 32 steps per epoch whatever the number of cells (at least 128 per batch); 16 for the
        # averaged networks, which learn together and need more epochs (10,000 cells: 7.5 s, not 10.3 s,
        # for the same ROC AUC in benchmarks/bench_anomaly.py).
        steps = 16 if members > 1 else 32
        batch = batch_size or max(128, int(np.ceil(0.8 * len(standard) / steps)))
        history = _train(network, optimizer, standard, seed=seed, max_epochs=max_epochs, batch_size=batch)
        seconds = time.perf_counter() - started
        card = AnomalyCard(
            design=design, features=list(features), log_features=list(log_features),
            mean=mean.tolist(), scale=scale.tolist(), threshold=0.0, contamination=float(contamination),
            fitted_on=f"condition {fit_on}" if fit_on else "all cells", n_cells=int(len(standard)), seed=seed,
            members=members,
            training={
                "epochs": len(history["loss"]),
                "loss": round(float(history["loss"][-1]), 5),
                "val_loss": round(float(min(history["val_loss"])), 5),
                "seconds": round(seconds, 2),
                "optimizer": "SGD momentum 0.9" if design == "original" else "Adam",
                "batch_size": batch,
            },
        )
        model = cls(network, card)
        if members > 1:
            model.card.member_scale = np.median(model._member_errors(standard), axis=0).round(8).tolist()
        if design != "original":
            median = np.median(standard, axis=0)
            mad = 1.4826 * np.median(np.abs(standard - median), axis=0)
            model.card.feature_median = median.round(8).tolist()
            model.card.feature_mad = np.where(mad > 1e-6, mad, 1.0).round(8).tolist()
            model.card.error_scale = np.quantile(model._reconstruction_errors(standard), [0.5, 0.99]).round(8).tolist()
            model.card.distance_scale = np.quantile(model._feature_distances(standard), [0.5, 0.99]).round(8).tolist()
        scores = model._scores(standard)
        model.card.score_quantiles = np.quantile(scores, np.linspace(0, 1, 1001)).round(8).tolist()
        model.card.threshold = float(np.quantile(scores, 1 - contamination))
        if design == "original":
            model._fit_envelope(model._codes(standard), contamination, seed)
        return model

    def _fit_envelope(self, codes: np.ndarray, contamination: float, seed: int) -> None:
        """The study's flags: an EllipticEnvelope on the 2-D codes.

        When the codes collapse (dead ReLU units put many cells on one point,
        which the robust covariance cannot fit), the flags fall back to the
        score threshold, and the card says so.
        """
        import warnings

        from sklearn.covariance import EllipticEnvelope

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                envelope = EllipticEnvelope(contamination=contamination, random_state=seed).fit(codes)
        except ValueError as exc:
            self.card.envelope = {"failed": f"the 2-D codes are degenerate ({exc}); flags use the score threshold"}
            return
        self.card.envelope = {
            "location": envelope.location_.tolist(), "precision": envelope.precision_.tolist(),
            "offset": float(envelope.offset_),
        }

    # -- scoring ---------------------------------------------------------------
    def _standardise(self, cells: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
        values = feature_matrix(cells, self.card.features, self.card.log_features, source=source)
        finite = np.isfinite(values).all(axis=1)
        standard = (np.nan_to_num(values) - np.array(self.card.mean)) / np.array(self.card.scale)
        return standard.astype(np.float32), finite

    def _member_errors(self, standard: np.ndarray) -> np.ndarray:
        """(cells, members): each member's mean squared reconstruction error."""
        reconstruction = np.asarray(self.keras_model(standard, training=False))
        reconstruction = reconstruction.reshape(len(standard), self.card.members, standard.shape[1])
        return ((reconstruction - standard[:, None, :]) ** 2).mean(axis=2)

    def _reconstruction_errors(self, standard: np.ndarray) -> np.ndarray:
        errors = self._member_errors(standard)
        if self.card.members > 1:  # each member in units of its own typical error, then averaged
            errors = errors / np.maximum(np.array(self.card.member_scale), 1e-12)
        return errors.mean(axis=1)

    def _feature_distances(self, standard: np.ndarray) -> np.ndarray:
        """The largest robust z of a cell's features (|value - median| / MAD of the fitted cells)."""
        return (np.abs(standard - np.array(self.card.feature_median)) / np.array(self.card.feature_mad)).max(axis=1)

    def _scores(self, standard: np.ndarray) -> np.ndarray:
        errors = self._reconstruction_errors(standard)
        if not self.card.error_scale:  # the original design, and models fitted before the second part
            return errors
        # An autoencoder rebuilds a cell that is a scaled copy of a normal one (very large, very small)
        # almost perfectly: its error says "odd shape", not "odd size". The robust distance says the
        # second. Each in units of its own spread on the fitted cells (0 at the median, 1 at the 99th
        # percentile); a cell is as anomalous as the larger of the two.
        def scaled(values, scale):
            return (values - scale[0]) / max(scale[1] - scale[0], 1e-12)

        return np.maximum(scaled(errors, self.card.error_scale),
                          scaled(self._feature_distances(standard), self.card.distance_scale))

    def _codes(self, standard: np.ndarray) -> np.ndarray:
        return np.asarray(self._encoder(standard, training=False))

    def score(self, cells: pd.DataFrame, *, contamination: float | None = None,
              source: str = "cells table") -> pd.DataFrame:
        """The cells with ``anomaly_score``, ``is_anomaly`` and the 2-D code added.

        ``contamination`` moves the threshold (a quantile of the fitted cells'
        scores) without refitting. Cells with a missing feature get no score.
        With the original design, ``is_anomaly`` is the EllipticEnvelope's
        verdict on the codes (its own contamination) unless ``contamination``
        is given.
        """
        if len(cells) == 0:
            return cells.assign(**{c: pd.Series(dtype=float) for c in SCORE_COLUMNS})
        standard, finite = self._standardise(cells, source)
        scores = self._scores(standard)
        codes = self._codes(standard)
        threshold = self.threshold_for(contamination)
        flags = scores > threshold
        if self.card.design == "original" and contamination is None and "location" in self.card.envelope:
            flags = self._envelope_flags(codes)
        scored = cells.copy()
        scored["anomaly_score"] = np.where(finite, scores, np.nan)
        scored["is_anomaly"] = np.where(finite, flags, False)
        scored["anomaly_code_1"] = np.where(finite, codes[:, 0], np.nan)
        scored["anomaly_code_2"] = np.where(finite, codes[:, 1], np.nan)
        return scored

    def _envelope_flags(self, codes: np.ndarray) -> np.ndarray:
        location = np.array(self.card.envelope["location"])
        precision = np.array(self.card.envelope["precision"])
        centred = codes - location
        mahalanobis = np.einsum("ij,jk,ik->i", centred, precision, centred)
        return -mahalanobis - self.card.envelope["offset"] < 0

    def threshold_for(self, contamination: float | None) -> float:
        """The score threshold for a contamination (None: the fitted one)."""
        if contamination is None or contamination == self.card.contamination:
            return self.card.threshold
        if not 0 < contamination < 1:
            raise AnomalyError(f"contamination must be between 0 and 1, not {contamination}")
        grid = np.linspace(0, 1, len(self.card.score_quantiles))
        return float(np.interp(1 - contamination, grid, self.card.score_quantiles))

    # -- files -----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``<path>.keras`` and ``<path>.card.json`` beside it."""
        path = Path(path)
        if path.suffix != ".keras":
            path = path.with_suffix(".keras")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keras_model.save(path)
        path.with_name(path.stem + ".card.json").write_text(json.dumps(asdict(self.card), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> AnomalyModel:
        import keras

        path = Path(path)
        card_file = path.with_name(path.stem + ".card.json")
        if not path.exists() or not card_file.exists():
            raise AnomalyError(f"{path.name}: anomaly model or its card ({card_file.name}) not found")
        try:
            card = AnomalyCard.from_dict(json.loads(card_file.read_text()), source=card_file.name)
        except json.JSONDecodeError as exc:
            raise AnomalyError(f"{card_file.name}: not valid JSON ({exc})") from None
        return cls(keras.models.load_model(path, compile=False), card)


def model_zip_bytes(model: AnomalyModel, name: str = "anomaly_model") -> bytes:
    """A fitted model as one zip (``<name>.keras`` + ``<name>.card.json``), to keep beside the results."""
    import io
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as folder:
        path = model.save(Path(folder) / f"{name}.keras")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.write(path, path.name)
            card = path.with_name(path.stem + ".card.json")
            archive.write(card, card.name)
    return buffer.getvalue()


def model_from_zip(data: bytes, *, name: str = "model zip") -> AnomalyModel:
    """Reload a model written by :func:`model_zip_bytes`."""
    import io
    import tempfile
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise AnomalyError(f"{name}: not a zip file") from None
    models = [n for n in archive.namelist() if n.endswith(".keras") and "/" not in n]
    if len(models) != 1:
        raise AnomalyError(f"{name}: expected one .keras model with its .card.json, found {len(models)} models")
    with tempfile.TemporaryDirectory() as folder:
        archive.extractall(folder, members=[m for m in archive.namelist() if "/" not in m and ".." not in m])
        return AnomalyModel.load(Path(folder) / models[0])


def _train(network, optimizer, data: np.ndarray, *, seed: int, max_epochs: int, batch_size: int,
           patience: int = 12, reduce_after: int = 5) -> dict:
    """MSE training on a 20 % validation split, with early stopping (best weights kept)
    and the learning rate halved after ``reduce_after`` epochs without progress.

    A compiled ``tf.function`` step rather than ``Model.fit``: the network is
    tiny, and ``fit``'s per-epoch machinery would cost more than the maths.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    n_validation = max(1, len(data) // 5)
    validation = tf.constant(data[order[:n_validation]])
    training = data[order[n_validation:]]
    variables = network.trainable_variables

    members = network.output.shape[-1] // data.shape[1]  # autoencoders side by side: each rebuilds the input

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(network(batch, training=True) - tf.tile(batch, [1, members])))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function
    def validation_loss():
        return tf.reduce_mean(tf.square(network(validation, training=False) - tf.tile(validation, [1, members])))

    history = {"loss": [], "val_loss": []}
    best, best_weights, waited, stalled = np.inf, network.get_weights(), 0, 0
    for _ in range(max_epochs):
        shuffled = training[rng.permutation(len(training))]
        losses = [float(step(tf.constant(shuffled[i:i + batch_size])))
                  for i in range(0, len(shuffled), batch_size)]
        current = float(validation_loss())
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(current)
        if current < best - 1e-5:
            best, best_weights, waited, stalled = current, network.get_weights(), 0, 0
        else:
            waited += 1
            stalled += 1
            if stalled >= reduce_after:
                optimizer.learning_rate.assign(max(float(optimizer.learning_rate) * 0.5, 1e-5))
                stalled = 0
            if waited >= patience:
                break
    network.set_weights(best_weights)
    return history


def _fit_pool(cells: pd.DataFrame, fit_on: str | None) -> pd.DataFrame:
    pool = cells
    if "touches_edge" in pool.columns:
        pool = pool[~pool["touches_edge"].astype(bool)]
    if fit_on is not None:
        if "condition" not in pool.columns:
            raise AnomalyError(f"cannot fit on condition {fit_on!r}: the table has no condition column")
        pool = pool[pool["condition"].astype(str) == str(fit_on)]
        if pool.empty:
            conditions = sorted({str(c) for c in cells.get("condition", pd.Series()).dropna()})
            raise AnomalyError(f"no cell has condition {fit_on!r} (conditions: {', '.join(conditions) or 'none'})")
    return pool


def fraction_flagged(scored: pd.DataFrame, by: str = "condition") -> pd.DataFrame:
    """Share of flagged cells per group (edge cells left out)."""
    table = scored[~scored["touches_edge"].astype(bool)] if "touches_edge" in scored else scored
    key = table[by].astype(object).where(table[by].notna(), "(none)").astype(str)
    grouped = table.assign(_group=key).groupby("_group", sort=False)["is_anomaly"]
    return pd.DataFrame({by: grouped.size().index, "n_cells": grouped.size().to_numpy(),
                         "n_anomalous": grouped.sum().astype(int).to_numpy(),
                         "fraction": grouped.mean().to_numpy()})
