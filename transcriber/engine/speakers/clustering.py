"""Who is who: agglomerative clustering of window embeddings on cosine distance.

The embeddings are first centred on the recording's mean (what every window
shares, the line, the room, the codec, is taken out) and L2-normalised
again.  Average linkage builds the tree; each cut of it into 2 …
``MOST_SPEAKERS`` clusters (the hints narrow that), with its clusters under
``MIN_SHARE`` of the windows merged into their nearest (one cough is not a
person), is scored by its silhouette: how much nearer each window is to its
own cluster than to the next.  The cut taken is the one with the most
speakers among those scoring within ``NEAR_BEST`` of the best; when even the
best scores under ``ONE_VOICE``, it is one speaker.  A fixed distance
threshold did worse on bench/dialogues.py's set (docs/PERFORMANCE.md,
diarization): the distances between two voices differ from one recording
to the next, their ratio to those within one voice much less.

Past ``DIRECT_LIMIT`` windows (about 19 minutes), the distances of all pairs
would grow with the square of the length (an hour: 4,800 windows, 92 MB in
float64; three hours: 1.7 GB), so the windows are first clustered block by
block, into more clusters than it has speakers (``BLOCK_CLUSTERS``), then
the blocks' clusters by their mean embeddings, each cut of those judged by
the silhouette of an even sample of ``DIRECT_LIMIT`` of its windows: memory
stays under ``DIRECT_LIMIT``² distances whatever the length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ONE_VOICE = 0.25  # the best cut's mean silhouette under which the windows are one speaker's
NEAR_BEST = 0.9  # a cut with more speakers is taken while it scores at least this share of the best
MOST_SPEAKERS = 10
MIN_SHARE = 0.05
MIN_WINDOWS = 4  # nor are fewer windows than this (3 s of speech): in a short call, chance makes such clusters
DIRECT_LIMIT = 1500
BLOCK_CLUSTERS = 30  # a block of windows is first cut into this many clusters (more than its speakers)


def cluster(embeddings: np.ndarray, min_speakers: int | None = None, max_speakers: int | None = None,
            one_voice: float = ONE_VOICE) -> np.ndarray:
    """A cluster number per embedding (rows L2-normalised), 0 … k-1 in order of first appearance."""
    count = embeddings.shape[0]
    if count == 0:
        return np.zeros(0, np.int64)
    centred = embeddings.astype(np.float32) - embeddings.mean(axis=0, dtype=np.float64).astype(np.float32)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    if float(norms.max()) < 1e-6:  # every window alike (the same audio over and over): one voice
        return np.zeros(count, np.int64)
    centred /= np.maximum(norms, 1e-8)
    if count <= DIRECT_LIMIT:
        return _agglomerate(centred, one_voice, min_speakers, max_speakers)
    return _two_stage(centred, one_voice, min_speakers, max_speakers)


def _agglomerate(embeddings: np.ndarray, one_voice: float, min_speakers: int | None,
                 max_speakers: int | None, clusters: int | None = None,
                 judge: Callable[[np.ndarray], tuple[np.ndarray, float]] | None = None) -> np.ndarray:
    """The tree's best cut, small clusters merged (or, with ``clusters``, its cut into that many).

    ``judge`` maps a cut to the labels and silhouette that decide (the second stage's: its
    windows'); by default, the cut's own, small clusters merged.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    count = embeddings.shape[0]
    if count == 1:
        return np.zeros(1, np.int64)
    distances = _cosine(embeddings)
    tree = linkage(distances, method="average")
    if clusters is not None:
        return _renumber(fcluster(tree, t=clusters, criterion="maxclust"))
    fewest = max(min_speakers or 1, 1)
    most = min(max(max_speakers or MOST_SPEAKERS, fewest), count)  # min_speakers past MOST_SPEAKERS is honoured
    if judge is None:
        square = squareform(distances.astype(np.float32))

        def judge(cut: np.ndarray) -> tuple[np.ndarray, float]:
            labels = _merge_small(embeddings, cut, fewest)
            return labels, silhouette(square, labels)

    del distances
    cuts: dict[int, tuple[float, np.ndarray]] = {}  # speakers -> (silhouette, labels)
    for wanted in range(max(fewest, 2), most + 1):
        labels, score = judge(_renumber(fcluster(tree, t=wanted, criterion="maxclust")))
        speakers = int(labels.max()) + 1
        if speakers >= max(fewest, 2) and speakers not in cuts:
            cuts[speakers] = (score, labels)
    best = max((score for score, _ in cuts.values()), default=-1.0)
    if not cuts or (fewest <= 1 and best < one_voice):
        return np.zeros_like(judge(np.zeros(count, np.int64))[0])
    near = best - (1.0 - NEAR_BEST) * abs(best)  # within 10 % of the best, below it even when it is negative
    chosen = max(speakers for speakers, (score, _) in cuts.items() if score >= near)
    return cuts[chosen][1]


def _cosine(embeddings: np.ndarray) -> np.ndarray:
    """Condensed cosine distances (float64, 0–2); a row of zeros is at distance 1 from every other."""
    from scipy.spatial.distance import pdist

    distances = pdist(embeddings.astype(np.float64), "cosine")
    np.nan_to_num(distances, copy=False, nan=1.0)
    return np.clip(distances, 0.0, 2.0, out=distances)


def silhouette(square: np.ndarray, labels: np.ndarray) -> float:
    """The mean silhouette of ``labels`` over the square distance matrix (a window alone in its cluster: 0)."""
    clusters = np.unique(labels)
    if clusters.size < 2:
        return -1.0
    rows = np.arange(labels.size)
    own = np.searchsorted(clusters, labels)
    members = np.array([(labels == c).sum() for c in clusters])
    sums = np.stack([square[:, labels == c].sum(axis=1) for c in clusters], axis=1)
    mean = sums / np.maximum(members[None, :] - (own[:, None] == np.arange(clusters.size)[None, :]), 1)
    inside = mean[rows, own].copy()
    mean[rows, own] = np.inf
    nearest = mean.min(axis=1)
    scores = np.where(members[own] > 1, (nearest - inside) / np.maximum(np.maximum(inside, nearest), 1e-12), 0.0)
    return float(scores.mean())


def _two_stage(embeddings: np.ndarray, one_voice: float, min_speakers: int | None,
               max_speakers: int | None) -> np.ndarray:
    """Blocks cut into ``BLOCK_CLUSTERS`` each, then their clusters' means clustered; each cut of the
    means judged by the silhouette of the windows it gives (on ``DIRECT_LIMIT`` of them, evenly spread)."""
    from scipy.spatial.distance import squareform

    labels = np.zeros(embeddings.shape[0], np.int64)
    centroids: list[np.ndarray] = []
    for first in range(0, embeddings.shape[0], DIRECT_LIMIT):
        block = embeddings[first:first + DIRECT_LIMIT]
        local = _agglomerate(block, one_voice, None, None, clusters=BLOCK_CLUSTERS)
        labels[first:first + block.shape[0]] = local + len(centroids)
        centroids += [_normalised(block[local == n].mean(axis=0)) for n in range(local.max() + 1)]
    sample = np.linspace(0, embeddings.shape[0] - 1, DIRECT_LIMIT).round().astype(np.int64)
    square = squareform(_cosine(embeddings[sample]).astype(np.float32))
    fewest = max(min_speakers or 1, 1)

    def judge(cut: np.ndarray) -> tuple[np.ndarray, float]:
        windows = _merge_small(embeddings, _renumber(cut[labels]), fewest)
        return windows, silhouette(square, windows[sample])

    return _agglomerate(np.stack(centroids), one_voice, min_speakers, max_speakers, judge=judge)


def _merge_small(embeddings: np.ndarray, labels: np.ndarray, keep_at_least: int) -> np.ndarray:
    """Clusters under ``MIN_SHARE`` of the windows (or ``MIN_WINDOWS``) joined to the nearest bigger one."""
    while True:
        sizes = np.bincount(labels)
        if len(sizes) <= keep_at_least:
            return labels
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= max(MIN_SHARE * sizes.sum(), MIN_WINDOWS):
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
