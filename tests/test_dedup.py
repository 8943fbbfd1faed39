import numpy as np

from curation.dedup import cluster_roots, exact_pairs, normalized_text_hash


def test_normalized_hash_ignores_case_and_whitespace_only():
    assert normalized_text_hash("Hello   World\n") == normalized_text_hash("hello world")
    assert normalized_text_hash("hello world") != normalized_text_hash("hello, world")


def test_exact_pairs_link_each_copy_to_the_first():
    hashes = np.array([7, 3, 7, 9, 3, 7], dtype=np.uint64)
    first, second = exact_pairs(hashes)
    assert sorted(zip(first.tolist(), second.tolist())) == [(0, 2), (0, 5), (1, 4)]
    assert [a.size for a in exact_pairs(np.array([], dtype=np.uint64))] == [0, 0]


def test_cluster_roots_are_the_earliest_member_of_each_component():
    roots = cluster_roots(7, np.array([5, 2, 6]), np.array([2, 4, 3]))
    assert roots.tolist() == [0, 1, 2, 3, 2, 2, 3]
    assert cluster_roots(0, np.array([], int), np.array([], int)).size == 0
