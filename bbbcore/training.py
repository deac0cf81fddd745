"""Training the boundary U-Net on outline (partial) or dense annotations.

The loss is computed only where the truth is known: inside annotated cells and
on their borders. An unannotated pixel is neither border nor interior.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import segmentation

from .annotations import read_truth_cells
from .io import load_image, normalise, read_array
from .resize import resize
from .unet import BoundaryModel, ModelCard, build_unet


@dataclass
class TrainingImage:
    """One training image at the network's working scale.

    Attributes
    ----------
    name : str
    image : (H, W) float32, normalised junction channel
    border : (H, W) float32 in [0, 1], the border target
    distance : (H, W) float32 in [0, 1], distance to the cell's border
        divided by the cell's largest (1 at its centre, 0 on its border)
    known : (H, W) float32 in [0, 1], where the loss counts
    """

    name: str
    image: np.ndarray
    border: np.ndarray
    distance: np.ndarray
    known: np.ndarray
    #: Relative sampling weight (per known pixel) of this image's patches.
    weight: float = 1.0
    #: Median equivalent diameter (px, at the image's own scale) of its whole annotated cells.
    cell_diameter_px: float | None = None


def median_cell_diameter(cells: np.ndarray) -> float | None:
    """Median equivalent diameter (px) of the labelled cells that do not touch the image edge."""
    from .instances import touches_edge

    areas = np.bincount(np.asarray(cells).ravel())
    edge = touches_edge(cells)
    inner = areas[[i for i in range(1, areas.size) if areas[i] and not edge[i]]]
    return float(np.median(np.sqrt(4 * inner / np.pi))) if inner.size else None


def training_diameter(images: list[TrainingImage]) -> float | None:
    """The typical cell diameter of a training set (median of its images'), for the card's cell_diameter_px."""
    values = [im.cell_diameter_px for im in images if im.cell_diameter_px]
    return float(np.median(values)) if values else None


def distance_target(cells: np.ndarray) -> np.ndarray:
    """Per cell, the distance to its border scaled by the cell's maximum."""
    inner = (cells > 0) & ~segmentation.find_boundaries(cells, connectivity=1, mode="inner", background=0)
    distance = ndi.distance_transform_edt(inner).astype(np.float32)
    peak = ndi.maximum(distance, cells, index=np.arange(cells.max() + 1))
    peak = np.asarray(peak, dtype=np.float32)
    peak[peak == 0] = 1
    return distance / peak[cells]


def targets_from_cells(cells: np.ndarray, *, border_width: int = 3, known_margin: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Border target and known-truth mask from a labels image of truth cells.

    The border is every pixel on a cell's edge (between two cells or between a
    cell and the unknown), thickened to about ``border_width`` px; the known
    mask is the cells grown by ``known_margin`` px so that their outer border
    counts too.
    """
    edge = segmentation.find_boundaries(cells, connectivity=1, mode="inner", background=0)
    if border_width > 1:
        edge = ndi.binary_dilation(edge, iterations=max(1, (border_width - 1) // 2))
    known = ndi.binary_dilation(cells > 0, iterations=known_margin) if known_margin else cells > 0
    return edge & known, known


def bbb_training_image(image_path: str | Path, outline_path: str | Path, *, scale: float) -> TrainingImage:
    """A BBB image and its outline annotation, as targets at ``scale``."""
    image = load_image(image_path)
    cells = read_truth_cells(outline_path)
    return _training_image(image.name, image.junction, cells, scale=scale)


def _training_image(name: str, junction: np.ndarray, cells: np.ndarray, *, scale: float, dense: bool = False):
    border, known = targets_from_cells(cells, known_margin=0 if dense else 3)
    if dense:
        known = np.ones_like(known)
    return TrainingImage(
        name=name,
        image=resize(junction, scale),
        border=resize(border.astype(np.float32), scale),
        distance=resize(distance_target(cells), scale),
        known=resize(known.astype(np.float32), scale),
        cell_diameter_px=median_cell_diameter(cells),
    )


def dense_training_image(image_path: str | Path, label_path: str | Path, *, scale: float) -> TrainingImage:
    """A densely labelled image (ISBI 2012 style: 0 = membrane, 255 = cell)."""
    image = normalise(np.asarray(read_array(image_path), dtype=np.float32))
    if image.ndim == 3:
        image = image.mean(axis=-1)
    label = read_array(label_path)
    if label.ndim == 3:
        label = label[..., 0]
    from skimage import measure

    # Cells are the 4-connected interiors; membrane pixels join the nearest cell.
    cells = measure.label(label > 0, connectivity=1)
    cells = segmentation.expand_labels(cells, distance=3)
    return _training_image(Path(image_path).name, image, cells, scale=scale, dense=True)


def bbb_dataset(folder: str | Path, *, scale: float, annotator: str = "annotator_a", names: list[str] | None = None) -> list[TrainingImage]:
    """Training images from a folder of ``<stem>.png`` + ``<stem>.outline[.annotator].png``."""
    folder = Path(folder)
    items = []
    for image_path in sorted(folder.glob("*.png")):
        if ".outline" in image_path.name:
            continue
        stem = image_path.stem
        if names and stem not in names:
            continue
        candidates = [folder / f"{stem}.outline.{annotator}.png", folder / f"{stem}.outline.png"]
        candidates += sorted(folder.glob(f"{stem}.outline*.png"))
        outline = next((c for c in candidates if c.exists()), None)
        if outline is None:
            continue
        items.append(bbb_training_image(image_path, outline, scale=scale))
    if not items:
        raise FileNotFoundError(f"{folder}: no image with an outline annotation found")
    return items


def pseudo_labelled_dataset(
    teacher: BoundaryModel,
    image_paths: list[str | Path],
    *,
    scale: float,
    keep: float = 0.8,
) -> list[TrainingImage]:
    """Unannotated images labelled by a trained model, as extra partial truth.

    Each image is segmented by ``teacher``; the cells it is surest of (the
    ``keep`` share with the highest mean boundary probability along their own
    border, none touching the image edge or the burned-in scale bar) become
    annotated cells and the rest stays unknown, exactly as a partial outline
    annotation would. Self-training of this kind adds the stains and
    brightnesses of more images; it cannot teach borders the teacher misses.
    Each image is resized by ``scale`` times the zoom the teacher segmented it
    at, so its cells reach the network at the training diameter (an image of
    another magnification does not teach another cell size).
    """
    from .pipeline import segment_image

    items = []
    for path in image_paths:
        image = load_image(path)
        result = segment_image(image, teacher)
        cells = confident_cells(result.labels, result.boundary_probability, image.raw, keep=keep)
        zoom = teacher.card.diameter_px / result.diameter_used_px if result.diameter_used_px else 1.0
        if cells.any():
            items.append(_training_image(f"{image.name} (pseudo-labels)", image.junction, cells, scale=scale * zoom))
    return items


def confident_cells(labels: np.ndarray, boundary_probability: np.ndarray, raw: np.ndarray | None = None, *,
                    keep: float = 0.5) -> np.ndarray:
    """``labels`` with only the ``keep`` share of cells whose borders are surest.

    A cell's confidence is the mean boundary probability on the 2-px band of
    its own border. Cells touching the image edge or the burned-in scale bar
    of ``raw`` are never kept (they are cut).
    """
    from .instances import burned_in_mask, touches_edge

    ids = np.arange(1, int(labels.max()) + 1)
    if ids.size == 0:
        return np.zeros_like(labels)
    ring = segmentation.find_boundaries(labels, mode="thick") & (labels > 0)
    confidence = np.asarray(ndi.mean(boundary_probability, labels * ring, index=ids), dtype=float)
    doubtful = touches_edge(labels)[ids]
    if raw is not None:
        doubtful |= np.isin(ids, labels[burned_in_mask(raw)])
    confidence[doubtful | ~np.isfinite(confidence)] = -1
    candidates = confidence[confidence >= 0]
    if candidates.size == 0:
        return np.zeros_like(labels)
    cut = np.quantile(candidates, 1 - keep)
    return np.where(np.isin(labels, ids[confidence >= cut]), labels, 0)


def isbi_dataset(folder: str | Path, *, scale: float = 1.0, slices: list[str] | None = None) -> list[TrainingImage]:
    """Training images from the ISBI 2012 layout ``image/NN.png`` + ``label/NN.png``."""
    folder = Path(folder)
    items = []
    for image_path in sorted((folder / "image").glob("*.png")):
        if slices and image_path.stem not in slices:
            continue
        items.append(dense_training_image(image_path, folder / "label" / image_path.name, scale=scale))
    if not items:
        raise FileNotFoundError(f"{folder}: no image/NN.png with label/NN.png found")
    return items


#: Junction textures the shipped models are trained on; "spiked" (perpendicular junctions) is held out
#: entirely, so scoring on it measures junction appearances the network has never seen.
TRAINING_TEXTURES = ("continuous", "punctate", "frayed")
#: Native cell diameters (px) drawn for generated images: from a low magnification's 15 px cells to a
#: high one's 300 px ones. Each image is then brought to the training diameter, as the pipeline brings
#: any image, so the network learns what a border looks like after that resizing.
GENERATED_NATIVE_DIAMETERS = (15.0, 300.0)
#: Spread of the cell diameter at the working scale around the training diameter: the diameter estimate
#: snaps within 15 %, and the network must stay surest at the right scale (the estimate relies on it).
GENERATED_WORKING_SPREAD = (0.85, 1.18)


def generated_dataset(
    n_images: int,
    *,
    training_diameter: float,
    input_scale: float,
    seed: int = 0,
    textures: tuple[str, ...] = TRAINING_TEXTURES,
    shape: tuple[int, int] = (320, 320),
    native_diameters: tuple[float, float] = GENERATED_NATIVE_DIAMETERS,
) -> list[TrainingImage]:
    """Generated junction images with exact labels (:mod:`bbbcore.junction_generator`), ``shape`` at the working scale.

    Each image is drawn at a native cell diameter log-uniform in ``native_diameters`` (px)
    (above 1.5 x ``training_diameter`` it is drawn at that, with a line as thin as the native one would
    be once shrunk: the same picture for less work), normalised as the pipeline normalises, resized so
    its cells have about ``training_diameter`` px (small cells arrive enlarged and soft, large ones
    shrunk and sharp), and then made a training image by ``input_scale`` exactly as an annotated image
    is, so the border target has the same width. Dense truth: every pixel is known.
    """
    from .config import NORMALISE_PERCENTILES
    from .junction_generator import BORDER_WIDTH_RANGE_PX, generate
    from .resize import resize_labels, resize_to

    rng = np.random.default_rng(seed)
    full = (round(shape[0] / input_scale), round(shape[1] / input_scale))  # at the annotated images' scale
    items = []
    for index in range(n_images):
        native = float(np.exp(rng.uniform(*np.log(native_diameters))))
        wanted = training_diameter * float(np.exp(rng.uniform(*np.log(GENERATED_WORKING_SPREAD))))
        drawn = min(native, 1.5 * wanted)
        zoom = wanted / drawn
        native_shape = (int(np.ceil(full[0] / zoom)), int(np.ceil(full[1] / zoom)))
        texture = textures[int(rng.integers(len(textures)))]
        overrides = {}
        if native > drawn:  # the line as thin as the native cells' line, once shrunk
            overrides["border_width_px"] = float(np.exp(rng.uniform(*np.log(BORDER_WIDTH_RANGE_PX)))) * drawn / native
        picture = generate(native_shape, diameter_px=drawn, texture=texture, seed=int(rng.integers(2**31)),
                           **overrides)
        junction = resize_to(normalise(picture.junction, NORMALISE_PERCENTILES), full, antialias=zoom < 1)
        cells = resize_labels(picture.cells, full)
        items.append(_training_image(f"generated {index} ({texture}, {native:.0f} px native)", junction, cells,
                                     scale=input_scale, dense=True))
    return items

class PatchSampler:
    """Random augmented patches from training images, reproducible from a seed.

    Augmentations: flips, 90-degree rotations, a small random affine warp
    (rotation, scale within ``zoom_range``, shear), gamma, contrast/brightness,
    Gaussian noise and blur, and, with probability ``dim_junctions``, faded
    junctions: the bright line along the annotated borders is pulled towards
    the local cytoplasm level by a smoothly varying amount (up to 85 %), so
    that the network also learns the faint ZO-1 borders of a weaker stain.
    """

    def __init__(
        self,
        images: list[TrainingImage],
        *,
        patch: int = 128,
        seed: int = 0,
        min_known: float = 0.25,
        zoom_range: tuple[float, float] = (0.8, 1.25),
        dim_junctions: float = 0.0,
    ):
        self.images = images
        self.patch = patch
        self.rng = np.random.default_rng(seed)
        self.min_known = min_known
        self.zoom_range = zoom_range
        self.dim_junctions = dim_junctions
        sizes = np.array([im.known.sum() * im.weight for im in images], dtype=float)
        self.p_image = sizes / sizes.sum()

    def state(self) -> dict:
        """RNG state, for resuming."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of image (B, P, P, 1), targets (B, P, P, 2: border, distance), known (B, P, P, 1)."""
        xs, ys, ws = [], [], []
        while len(xs) < batch:
            im = self.images[self.rng.choice(len(self.images), p=self.p_image)]
            x, y, w = self._one(im)
            if w.mean() < self.min_known:
                continue
            xs.append(x)
            ys.append(y)
            ws.append(w)
        stack = lambda a: np.stack(a)[..., None].astype(np.float32)  # noqa: E731
        return stack(xs), np.stack(ys).astype(np.float32), stack(ws)

    def _one(self, im: TrainingImage):
        rng, p = self.rng, self.patch
        # Crop a window large enough for any rotation/scale, then warp to p x p.
        big = int(np.ceil(p * max(self.zoom_range) * 1.5)) + 2
        h, w = im.image.shape
        pad = max(0, big - min(h, w))
        arrays = [im.image, im.border, im.distance, im.known]
        if pad:
            arrays = [np.pad(a, pad, mode="reflect" if i == 0 else "constant") for i, a in enumerate(arrays)]
            h, w = arrays[0].shape
        y0 = rng.integers(0, h - big + 1)
        x0 = rng.integers(0, w - big + 1)
        crops = [a[y0 : y0 + big, x0 : x0 + big] for a in arrays]
        angle = rng.uniform(-np.pi, np.pi)
        zoom = np.exp(rng.uniform(*np.log(self.zoom_range)))
        shear = rng.uniform(-0.1, 0.1)
        c, s = np.cos(angle), np.sin(angle)
        matrix = np.array([[c, -s], [s, c]]) @ np.array([[1, shear], [0, 1]]) / zoom
        centre_out = (p - 1) / 2
        centre_in = (big - 1) / 2
        offset = centre_in - matrix @ np.array([centre_out, centre_out])
        warped = [
            ndi.affine_transform(a, matrix, offset=offset, output_shape=(p, p), order=1, mode="reflect")
            for a in crops
        ]
        x, border, distance, known = warped
        y = np.stack([(border > 0.5).astype(np.float32), np.clip(distance, 0, 1)], axis=-1)
        if rng.random() < 0.5:
            x, y, known = x[:, ::-1], y[:, ::-1], known[:, ::-1]
        k = rng.integers(4)
        x, y, known = np.rot90(x, k), np.rot90(y, k), np.rot90(known, k)
        if self.dim_junctions and rng.random() < self.dim_junctions:
            x = faded_junctions(x, y[..., 0], rng)
        # Intensity: gamma, contrast/brightness, blur, noise.
        x = np.clip(x, 0, 1) ** np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
        x = x * rng.uniform(0.7, 1.3) + rng.uniform(-0.1, 0.1)
        if rng.random() < 0.3:
            x = ndi.gaussian_filter(x, rng.uniform(0.3, 1.0))
        x = x + rng.normal(0, rng.uniform(0, 0.06), x.shape)
        return x.astype(np.float32), y, (known > 0.5).astype(np.float32)


def faded_junctions(image: np.ndarray, border: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with its junction line faded in a random smooth region.

    Pixels near the annotated ``border`` that are brighter than their
    surroundings (the junction itself, wherever the annotator's line lies) are
    pulled towards the local mean by a weight that varies smoothly over the
    field, from 0 (in about the weakest sixth of a smooth random field) to at
    most 0.85.
    """
    size = image.shape[0]
    near_border = ndi.binary_dilation(border > 0.5, iterations=3)
    local_mean = ndi.uniform_filter(image, 9)
    excess = np.clip(image - local_mean, 0, None) * near_border
    field = ndi.gaussian_filter(rng.normal(size=image.shape), size / 6)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    strength = rng.uniform(0.4, 0.85) * np.clip(1.5 * field - 0.25, 0, 1)
    return (image - strength * excess).astype(np.float32)


def _loss_fn(border_weight: float):
    import tensorflow as tf

    def loss(y_true, y_pred, known):
        eps = 1e-6
        border_true, border_pred = y_true[..., :1], tf.clip_by_value(y_pred[..., :1], eps, 1 - eps)
        bce = -(border_weight * border_true * tf.math.log(border_pred) + (1 - border_true) * tf.math.log(1 - border_pred))
        n_known = tf.reduce_sum(known) + eps
        bce = tf.reduce_sum(bce * known) / n_known
        inter = tf.reduce_sum(border_true * border_pred * known)
        dice = 1 - (2 * inter + 1) / (tf.reduce_sum((border_true + border_pred) * known) + 1)
        total = bce + dice
        if y_pred.shape[-1] > 1:
            # Distance to the border: mean squared error on known pixels, scaled
            # so that it weighs about as much as the border terms.
            mse = tf.reduce_sum(tf.square(y_true[..., 1:2] - y_pred[..., 1:2]) * known) / n_known
            total = total + 10.0 * mse
        return total

    return loss


class TrainingCancelled(Exception):
    """A training stopped on request (``should_stop``); nothing was written but its checkpoint."""


def train(
    images: list[TrainingImage],
    *,
    out: str | Path | None,
    card: ModelCard,
    steps: int = 2000,
    batch: int = 8,
    patch: int = 128,
    learning_rate: float = 2e-3,
    border_weight: float = 3.0,
    seed: int = 0,
    steps_per_epoch: int = 100,
    zoom_range: tuple[float, float] = (0.8, 1.25),
    dim_junctions: float = 0.0,
    checkpoint_dir: str | Path | None = None,
    start_from: str | Path | None = None,
    progress: bool = True,
    log=print,
    on_step=None,
    should_stop=None,
) -> BoundaryModel:
    """Train a boundary U-Net and save it (``.keras`` + card) to ``out``.

    Resumes from ``checkpoint_dir`` when it holds a checkpoint of the same run.
    Loss = weighted binary cross-entropy + soft Dice, both masked to the known
    truth. Adam with cosine decay. Logged once per epoch of ``steps_per_epoch``.
    ``start_from``: a ``.keras`` model of the same architecture whose weights the
    training starts from (fine-tuning) instead of random ones. ``out`` None: the
    model is returned, not saved (``checkpoint_dir`` is then needed). ``on_step(step,
    steps, loss)`` is called after each step; ``should_stop()`` returning True stops
    the training (raises :class:`TrainingCancelled`).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    out = Path(out) if out is not None else None
    if checkpoint_dir is None and out is None:
        raise ValueError("a training that does not save its model needs a checkpoint_dir")
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out.with_suffix(".ckpt")
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state_path = checkpoint_dir / "state.json"
    weights_path = checkpoint_dir / "model.keras"
    sampler = PatchSampler(images, patch=patch, seed=seed, zoom_range=zoom_range, dim_junctions=dim_junctions)
    model = build_unet(depth=card.depth, base_width=card.base_width, n_outputs=len(card.outputs), name=card.name)
    if start_from is not None:
        model.set_weights(keras.saving.load_model(start_from, compile=False).get_weights())
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1), alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)
    start_step, history = 0, []
    if state_path.exists() and weights_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("steps") == steps and state.get("seed") == seed:
            model = keras.saving.load_model(weights_path, compile=False)
            optimizer = keras.optimizers.Adam(schedule)
            optimizer.build(model.trainable_variables)
            for var, value in zip(optimizer.variables, np.load(checkpoint_dir / "optimizer.npz").values()):
                var.assign(value)
            sampler.set_state(state["rng"])
            start_step, history = state["step"], state["history"]
            log(f"resuming from step {start_step} ({checkpoint_dir})")
    loss_fn = _loss_fn(border_weight)

    @tf.function(reduce_retracing=True)
    def train_step(x, y, w):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = loss_fn(y, pred, w)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start_step, desc="training", unit="step")
    started = time.perf_counter()
    losses = []
    for step in range(start_step, steps):
        x, y, w = sampler.sample(batch)
        losses.append(float(train_step(x, y, w)))
        if on_step is not None:
            on_step(step + 1, steps, losses[-1])
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"training stopped at step {step + 1} of {steps}")
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % steps_per_epoch == 0 or step + 1 == steps:
            epoch_loss = float(np.mean(losses))
            losses = []
            history.append({"step": step + 1, "loss": round(epoch_loss, 5)})
            log(f"epoch {len(history)}: step {step + 1}/{steps} loss {epoch_loss:.4f}")
            model.save(weights_path)
            np.savez(checkpoint_dir / "optimizer.npz", *[np.asarray(v) for v in optimizer.variables])
            state_path.write_text(
                json.dumps({"step": step + 1, "steps": steps, "seed": seed, "rng": sampler.state(), "history": history})
            )
    if bar:
        bar.close()
    card.training = {
        **card.training,
        "images": [im.name for im in images if not im.name.startswith("generated ")]
        + ([f"{n} generated images"] if (n := sum(im.name.startswith("generated ") for im in images)) else []),
        "steps": steps,
        "batch": batch,
        "patch_px_at_working_scale": patch,
        "learning_rate": learning_rate,
        "border_weight": border_weight,
        "zoom_range": list(zoom_range),
        "dim_junctions": dim_junctions,
        "seed": seed,
        **({"started_from": str(start_from)} if start_from is not None else {}),
        "loss_history": history,
        "seconds_this_run": round(time.perf_counter() - started, 1),
    }
    boundary_model = BoundaryModel(model, card)
    if out is not None:
        boundary_model.save(out)
    return boundary_model
