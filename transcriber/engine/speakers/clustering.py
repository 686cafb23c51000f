"""Who is who: agglomerative clustering of window embeddings on cosine distance.

Average linkage, cut at ``THRESHOLD`` (tuned on bench/dialogues.py's set,
docs/PERFORMANCE.md), or at the speaker count the hints allow; clusters
holding under ``MIN_SHARE`` of the windows are merged into their nearest
(one cough, one short window, are not a person).  Past ``DIRECT_LIMIT``
windows (about 19 minutes), the distances of all pairs would grow with the
square of the length (an hour: 4,800 windows, 92 MB in float64; three hours:
1.7 GB), so the windows are first clustered block by block, tighter, and the
blocks' clusters, by their mean embeddings, then together: memory stays
under ``DIRECT_LIMIT``² / 2 distances whatever the length.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.5  # cosine distance at which two groups of windows are two people
MIN_SHARE = 0.05
DIRECT_LIMIT = 1500
BLOCK_THRESHOLD = 0.3  # within a block: only windows surely of one speaker are joined


def cluster(embeddings: np.ndarray, min_speakers: int | None = None, max_speakers: int | None = None,
            threshold: float = THRESHOLD) -> np.ndarray:
    """A cluster number per embedding (rows L2-normalised), 0 … k-1."""
    count = embeddings.shape[0]
    if count == 0:
        return np.zeros(0, np.int64)
    if count <= DIRECT_LIMIT:
        labels = _agglomerate(embeddings, threshold, min_speakers, max_speakers)
    else:
        labels = _two_stage(embeddings, threshold, min_speakers, max_speakers)
    return _merge_small(embeddings, labels, min_speakers or 1)


def _agglomerate(embeddings: np.ndarray, threshold: float, min_speakers: int | None,
                 max_speakers: int | None) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    count = embeddings.shape[0]
    if count == 1:
        return np.zeros(1, np.int64)
    distances = np.clip(pdist(embeddings.astype(np.float64), "cosine"), 0.0, 2.0)
    tree = linkage(distances, method="average")
    del distances
    labels = fcluster(tree, t=threshold, criterion="distance")
    found = len(np.unique(labels))
    wanted = min(max(found, min_speakers or 1), max_speakers or count, count)
    if wanted != found:
        labels = fcluster(tree, t=wanted, criterion="maxclust")
    return _renumber(labels)


def _two_stage(embeddings: np.ndarray, threshold: float, min_speakers: int | None,
               max_speakers: int | None) -> np.ndarray:
    labels = np.zeros(embeddings.shape[0], np.int64)
    centroids: list[np.ndarray] = []
    for first in range(0, embeddings.shape[0], DIRECT_LIMIT):
        block = embeddings[first:first + DIRECT_LIMIT]
        local = _agglomerate(block, BLOCK_THRESHOLD, None, None)
        labels[first:first + block.shape[0]] = local + len(centroids)
        centroids += [_normalised(block[local == n].mean(axis=0)) for n in range(local.max() + 1)]
    # Blocks of ``DIRECT_LIMIT`` windows seldom have more than a few dozen clusters each.
    grouped = _agglomerate(np.stack(centroids), threshold, min_speakers, max_speakers)
    return grouped[labels]


def _merge_small(embeddings: np.ndarray, labels: np.ndarray, keep_at_least: int) -> np.ndarray:
    """Clusters under ``MIN_SHARE`` of the windows joined to the nearest bigger one."""
    while True:
        sizes = np.bincount(labels)
        if len(sizes) <= keep_at_least:
            return labels
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= MIN_SHARE * labels.size:
            return labels
        centroids = np.stack([_normalised(embeddings[labels == n].mean(axis=0)) for n in range(len(sizes))])
        similarity = centroids @ centroids[smallest]
        similarity[smallest] = -np.inf
        labels = _renumber(np.where(labels == smallest, int(np.argmax(similarity)), labels))


def _renumber(labels: np.ndarray) -> np.ndarray:
    """0 … k-1, in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


def _normalised(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-8)
