"""Retrieval and classification metrics against hand-computed values and an argsort reference."""

import numpy as np
import pytest
import torch

import gramviz


def test_hand_computed_ranks_and_recalls():
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.3, 0.2],  # target 0 -> rank 1
            [0.5, 0.4, 0.8, 0.1],  # target 1 -> 0.5 and 0.8 above -> rank 3
            [0.1, 0.2, 0.3, 0.4],  # target 2 -> 0.4 above -> rank 2
        ]
    )
    targets = [0, 1, 2]
    assert gramviz.retrieval_ranks(scores, targets).tolist() == [1, 3, 2]
    m = gramviz.retrieval_metrics(scores, targets, ks=(1, 2, 5))
    assert m == {"R@1": pytest.approx(1 / 3), "R@2": pytest.approx(2 / 3), "R@5": 1.0, "MedR": 2.0, "MnR": 2.0}


def test_median_of_even_count_is_mean_of_middle_ranks():
    scores = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    m = gramviz.retrieval_metrics(scores, [0, 1, 0, 0], ks=(1,))  # ranks 1, 2, 2, 1
    assert m["MedR"] == 1.5 and m["MnR"] == 1.5 and m["R@1"] == 0.5


def test_several_correct_items_take_the_best_ranked():
    # a clip (query) with two captions among five: the better ranked caption counts
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.2]])
    relevant = torch.tensor([[False, False, True, False, True]])
    assert gramviz.retrieval_ranks(scores, relevant).tolist() == [3]


def test_a_query_is_found_at_its_best_correct_item_not_its_worst():
    # Wrong items lie between the correct ones, and some tie with them; ranks worked out by hand:
    scores = torch.tensor(
        [
            [0.9, 0.2, 0.7, 0.7, 0.5, 0.1],  # correct 2 (0.7), 5 (0.1): wrong 0.9 and the tied 0.7 above -> 3
            [0.4, 0.4, 0.4, 0.8, 0.0, 0.0],  # correct 0, 1 (both 0.4): wrong 0.8 and the tied 0.4 above -> 3
            [0.6, 0.6, 0.3, 0.0, 0.0, 0.0],  # correct 1 only: the tie with wrong item 0 counts against -> 2
            [0.1, 0.3, 0.2, 0.9, 0.8, 0.4],  # correct 3 (0.9), 1 (0.3): nothing wrong above -> 1
        ]
    )
    relevant = torch.zeros(4, 6, dtype=torch.bool)
    for row, cols in enumerate([(2, 5), (0, 1), (1,), (3, 1)]):
        relevant[row, list(cols)] = True
    # the worst correct items would rank 5, 3, 2 and 4
    assert gramviz.retrieval_ranks(scores, relevant).tolist() == [3, 3, 2, 1]
    m = gramviz.retrieval_metrics(scores, relevant, ks=(1, 2, 3))
    assert m == {"R@1": 0.25, "R@2": 0.5, "R@3": 1.0, "MedR": 2.5, "MnR": 2.25}


def test_relevance_matrix_for_the_reverse_direction():
    caption_clip = [0, 0, 1, 2, 2, 2]
    rel = gramviz.relevance_matrix(caption_clip, 3)
    assert rel.shape == (6, 3) and rel.sum().item() == 6
    clip_to_captions = rel.T
    assert clip_to_captions[2].nonzero().flatten().tolist() == [3, 4, 5]


def test_ties_are_broken_against_the_query():
    scores = torch.zeros(4, 4)  # no information at all
    m = gramviz.retrieval_metrics(scores, [0, 1, 2, 3], ks=(1,))
    assert m["R@1"] == 0.0 and m["MnR"] == 4.0


def test_matches_argsort_reference_on_random_scores():
    scores = torch.randn(50, 30)
    targets = torch.randint(0, 30, (50,))
    order = np.argsort(-scores.numpy(), axis=1)
    want = np.array([int(np.nonzero(order[i] == targets[i].item())[0][0]) + 1 for i in range(50)])
    np.testing.assert_array_equal(gramviz.retrieval_ranks(scores, targets).numpy(), want)
    m = gramviz.retrieval_metrics(scores, targets)
    assert m["R@1"] == pytest.approx(np.mean(want <= 1))
    assert m["R@10"] == pytest.approx(np.mean(want <= 10))
    assert m["MedR"] == pytest.approx(np.median(want))
    assert m["MnR"] == pytest.approx(np.mean(want))


def test_topk_accuracy_and_confusion_matrix():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.3, 0.7, 0.5], [0.2, 0.1, 0.8], [0.6, 0.3, 0.1]])
    labels = [1, 2, 2, 1]
    assert gramviz.topk_accuracy(scores, labels, ks=(1, 2)) == {"top1": 0.5, "top2": 1.0}
    cm = gramviz.confusion_matrix(scores, labels)
    assert cm.tolist() == [[0, 0, 0], [1, 1, 0], [0, 1, 1]]


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="NaN"):
        gramviz.retrieval_ranks(torch.tensor([[float("nan"), 1.0]]), [0])
    with pytest.raises(ValueError, match="query 1 has no correct item"):
        gramviz.retrieval_ranks(torch.ones(2, 2), torch.tensor([[True, False], [False, False]]))
    with pytest.raises(ValueError, match="must have shape"):
        gramviz.retrieval_ranks(torch.ones(2, 2), [0, 1, 1])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        gramviz.retrieval_ranks(torch.ones(2, 2), [0, 2])
    with pytest.raises(ValueError, match="2-D"):
        gramviz.retrieval_metrics(torch.ones(3), [0])
    with pytest.raises(ValueError, match="class indices"):
        gramviz.confusion_matrix(torch.ones(2, 2), [0, 5])
