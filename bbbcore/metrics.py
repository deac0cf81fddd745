"""Instance segmentation scores against partial truth.

Truth cells come from :func:`bbbcore.annotations.outline_to_cells`; 0 there is
"unknown", so a predicted cell is only judged when it lies mostly (>= 50 % of
its pixels) inside annotated cells.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment


def iou_matrix(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU between every truth and predicted cell.

    Returns
    -------
    iou : (n_truth, n_pred) float array
    truth_ids, pred_ids : the label ids of the rows and columns.
    """
    truth = np.asarray(truth).ravel()
    predicted = np.asarray(predicted).ravel()
    if truth.shape != predicted.shape:
        raise ValueError("truth and predicted labels differ in shape")
    nt, npred = int(truth.max()) + 1, int(predicted.max()) + 1
    overlap = sparse.coo_matrix((np.ones(truth.size, np.int64), (truth, predicted)), shape=(nt, npred)).toarray()
    truth_area = overlap.sum(axis=1)
    pred_area = overlap.sum(axis=0)
    truth_ids = np.flatnonzero(truth_area[1:] > 0) + 1
    pred_ids = np.flatnonzero(pred_area[1:] > 0) + 1
    inter = overlap[np.ix_(truth_ids, pred_ids)].astype(float)
    union = truth_area[truth_ids, None] + pred_area[None, pred_ids] - inter
    return inter / np.maximum(union, 1), truth_ids, pred_ids


def evaluable_predictions(truth: np.ndarray, predicted: np.ndarray, *, inside: float = 0.5) -> np.ndarray:
    """Ids of predicted cells with at least ``inside`` of their pixels in annotated cells."""
    predicted = np.asarray(predicted)
    areas = np.bincount(predicted.ravel())
    annotated = np.bincount(predicted[np.asarray(truth) > 0].ravel(), minlength=areas.size)
    ids = np.flatnonzero((areas > 0) & (annotated >= inside * np.maximum(areas, 1)))
    return ids[ids > 0]


def match_cells(truth: np.ndarray, predicted: np.ndarray, *, iou_threshold: float = 0.5):
    """One-to-one matching of truth and predicted cells (Hungarian on IoU).

    Returns
    -------
    pairs : list of (truth_id, pred_id, iou) with iou >= ``iou_threshold``.
    """
    iou, truth_ids, pred_ids = iou_matrix(truth, predicted)
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-iou)
    return [
        (int(truth_ids[r]), int(pred_ids[c]), float(iou[r, c]))
        for r, c in zip(rows, cols)
        if iou[r, c] >= iou_threshold
    ]


def score_segmentation(
    truth: np.ndarray,
    predicted: np.ndarray,
    *,
    thresholds: tuple[float, ...] = (0.5, 0.75),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Recall, precision, F1 at each IoU threshold, mean IoU, bootstrap CIs.

    Recall: fraction of truth cells matched one-to-one at IoU >= t.
    Precision: matched fraction of the *evaluable* predicted cells (those lying
    mostly inside annotated cells). F1: their harmonic mean. Mean IoU: each
    truth cell's best IoU with any predicted cell, averaged. The 95 % bootstrap
    intervals resample truth cells and evaluable predicted cells.
    """
    truth = np.asarray(truth)
    predicted = np.asarray(predicted)
    iou, truth_ids, pred_ids = iou_matrix(truth, predicted)
    evaluable = evaluable_predictions(truth, predicted)
    n_truth, n_eval = len(truth_ids), len(evaluable)
    best_iou = iou.max(axis=1) if iou.size else np.zeros(n_truth)
    result = {
        "n_truth": n_truth,
        "n_predicted": int(len(pred_ids)),
        "n_predicted_evaluable": int(n_eval),
        "mean_iou": round(float(best_iou.mean()) if n_truth else 0.0, 4),
    }
    rng = np.random.default_rng(seed)
    for t in thresholds:
        pairs = match_cells(truth, predicted, iou_threshold=t)
        matched_truth = np.isin(truth_ids, [p[0] for p in pairs])
        matched_pred = np.isin(evaluable, [p[1] for p in pairs])
        recall = matched_truth.mean() if n_truth else 0.0
        precision = matched_pred.mean() if n_eval else 0.0
        f1 = _f1(precision, recall)
        boot = []
        for _ in range(n_bootstrap):
            r = matched_truth[rng.integers(0, n_truth, n_truth)].mean() if n_truth else 0.0
            p = matched_pred[rng.integers(0, n_eval, n_eval)].mean() if n_eval else 0.0
            boot.append(_f1(p, r))
        key = f"{t:g}"
        result[f"recall@{key}"] = round(float(recall), 4)
        result[f"precision@{key}"] = round(float(precision), 4)
        result[f"f1@{key}"] = round(float(f1), 4)
        if n_bootstrap:
            low, high = np.percentile(boot, [2.5, 97.5])
            result[f"f1@{key}_ci95"] = [round(float(low), 4), round(float(high), 4)]
    return result


def inner_truth(truth: np.ndarray) -> np.ndarray:
    """``truth`` with the cells touching the image edge set to 0 (unknown).

    Scored so, a segmentation is judged on the cells its summaries and statistics use (edge cells are
    left out of them, ``touches_edge``): an edge sliver a few pixels wide is not a cell anyone counts,
    and a predicted cell lying mostly over edge cells is not judged, as over unannotated ground.
    """
    from .instances import touches_edge

    truth = np.asarray(truth)
    return np.where(touches_edge(truth)[truth], 0, truth).astype(truth.dtype)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
