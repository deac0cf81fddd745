"""bbbcore.metrics on hand-built label images."""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.metrics import evaluable_predictions, inner_truth, match_cells, score_segmentation


def grid(n=4, size=20):
    labels = np.zeros((n * size, n * size), np.int32)
    for i in range(n):
        for j in range(n):
            labels[i * size : (i + 1) * size, j * size : (j + 1) * size] = i * n + j + 1
    return labels


def test_perfect_match():
    truth = grid()
    scores = score_segmentation(truth, truth, n_bootstrap=50)
    assert scores["f1@0.5"] == 1.0 and scores["f1@0.75"] == 1.0 and scores["mean_iou"] == 1.0
    assert scores["f1@0.5_ci95"] == [1.0, 1.0]


def test_merged_pairs_fail_at_high_iou_only_partly():
    truth = grid()
    merged = truth.copy()
    merged[merged == 2] = 1  # cells 1 and 2 merged: IoU of each with the union is 0.5
    scores = score_segmentation(truth, merged, n_bootstrap=0)
    assert scores["recall@0.5"] == pytest.approx(15 / 16, abs=1e-4)  # IoU 0.5 still counts for one of them
    assert scores["recall@0.75"] == pytest.approx(14 / 16, abs=1e-4)
    assert scores["precision@0.75"] == pytest.approx(14 / 15, abs=1e-4)


def test_partial_truth_only_judges_predictions_inside_annotated_cells():
    truth = grid()
    truth[truth > 8] = 0  # only the top half is annotated
    predicted = grid()
    assert set(evaluable_predictions(truth, predicted)) == set(range(1, 9))
    scores = score_segmentation(truth, predicted, n_bootstrap=0)
    assert scores["precision@0.5"] == 1.0 and scores["n_predicted_evaluable"] == 8


def test_one_to_one_matching():
    truth = grid(2)
    shifted = np.roll(truth, 3, axis=1)
    pairs = match_cells(truth, shifted, iou_threshold=0.5)
    assert len({p[0] for p in pairs}) == len(pairs) == len({p[1] for p in pairs})
    assert all(0.5 <= p[2] < 1 for p in pairs)


def test_inner_truth_leaves_edge_slivers_unjudged_but_still_judges_inner_merges():
    truth = grid(5)
    truth[:, :2] = 99  # a sliver two pixels wide along the left edge: a cell cut by the frame
    predicted = truth.copy()
    predicted[predicted == 99] = 1  # the sliver swallowed by its neighbour, as a segmentation does
    predicted[predicted == 8] = 7  # and two inner cells merged
    everything = score_segmentation(truth, predicted, n_bootstrap=0)
    inner = score_segmentation(inner_truth(truth), predicted, n_bootstrap=0)
    # The sliver moved the left column's cells off the frame: inner are rows 2-4, columns 1-4 of the grid.
    assert everything["n_truth"] == 26 and inner["n_truth"] == 12
    # The edge cells are left out of the scores; the merged inner pair still counts against the segmentation.
    assert inner["recall@0.75"] == pytest.approx(10 / 12, abs=1e-4)
    assert inner["n_predicted_evaluable"] == 11
    assert everything["recall@0.75"] == pytest.approx(22 / 26, abs=1e-4)
    inner_ids = {6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19}
    assert inner_truth(truth).dtype == truth.dtype and set(np.unique(inner_truth(truth))) == {0} | inner_ids
