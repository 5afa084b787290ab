"""Leakage-safe dataset splits: grouped by site/deployment/device/day, stratified by label.

Pure kernel (numpy only): items are described by their labels and their group; the result is one
split name per item. No group is ever in two splits.

Why not scikit-learn's ``StratifiedGroupKFold``? It stratifies on *one* label per item and
builds *equal* folds, so ratios of 0.7/0.15/0.15 need 20 folds (and at least 20 groups) and
multi-label clips are stratified on an arbitrary label. ``GroupShuffleSplit`` ignores labels.
Instead :func:`grouped_split` assigns whole groups with a documented greedy plus local search
that minimises, over splits ``s`` and labels ``l``, the squared *relative* deviation from the
target counts::

    J = sum_s [ w_n ((n_s - r_s N) / N)^2 + sum_l ((c_sl - r_s C_l) / C_l)^2 ]

where ``n_s`` is the number of items in split ``s``, ``c_sl`` the number of items with label
``l`` in it, ``r_s`` the target ratio and ``w_n`` (the number of labels) makes the split sizes
weigh as much as all labels together. Relative deviations let rare labels count as much as
common ones. The seed sets the order in which groups are placed and in which improvements are
tried, so different seeds give different (comparably good) assignments whenever several exist.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from fieldkit.errors import ValidationError

__all__ = ["SPLITS", "grouped_split", "split_manifest_hash"]

SPLITS = ("train", "validation", "test")
#: Swaps cost O(groups^2) per pass; above this many groups only single moves are tried.
MAX_GROUPS_FOR_SWAPS = 2000
MAX_PASSES = 20


def _check_ratios(ratios: Sequence[float]) -> np.ndarray:
    """Ratios as an array; three non-negative numbers summing to 1."""
    r = np.asarray(ratios, dtype=float)
    if r.shape != (3,) or np.any(r < 0) or not np.isclose(r.sum(), 1.0, atol=1e-6):
        raise ValidationError(
            f"split ratios {tuple(ratios)} are invalid: expected three non-negative numbers "
            "(train, validation, test) summing to 1, e.g. 0.7,0.15,0.15."
        )
    return r


def _check_enough_groups(n_groups: int, ratios: np.ndarray, group_name: str) -> None:
    needed = int(np.count_nonzero(ratios))
    if n_groups < needed:
        text = ",".join(f"{r:g}" for r in ratios)
        raise ValidationError(
            f"{n_groups} {'group exists' if n_groups == 1 else 'groups exist'} for {group_name}; ratios {text} need at "
            f"least {needed} non-empty splits, so at least {needed} groups.",
            hint="Group by a finer key (deployment, device or day), or set a ratio to 0.",
        )


def _group_counts(labels: Sequence[Sequence[str]], groups: Sequence[str]
                  ) -> tuple[list[str], np.ndarray]:
    """Sorted group ids and a (groups, 1 + labels) count matrix; column 0 counts items."""
    if len(labels) != len(groups):
        raise ValidationError(f"{len(labels)} label lists but {len(groups)} groups: one per item.")
    group_ids = sorted(set(groups))
    label_ids = sorted({label for item in labels for label in item})
    g_index = {g: i for i, g in enumerate(group_ids)}
    l_index = {label: j + 1 for j, label in enumerate(label_ids)}
    counts = np.zeros((len(group_ids), 1 + len(label_ids)))
    for item_labels, group in zip(labels, groups):
        row = g_index[group]
        counts[row, 0] += 1
        for label in set(item_labels):
            counts[row, l_index[label]] += 1
    return group_ids, counts


class _Objective:
    """``J`` above, with the per-split errors ``E = C - T`` kept up to date."""

    def __init__(self, counts: np.ndarray, ratios: np.ndarray) -> None:
        totals = counts.sum(axis=0)
        self.weights = 1.0 / np.maximum(totals, 1.0) ** 2
        self.weights[0] *= max(1, counts.shape[1] - 1)
        self.error = -np.outer(ratios, totals)  # empty splits: C = 0

    def place_cost(self, x: np.ndarray, split: int) -> float:
        """Change of J when a group with counts ``x`` joins ``split``."""
        return float(((2 * x * self.error[split] + x * x) * self.weights).sum())

    def move_cost(self, x: np.ndarray, src: int, dst: int) -> float:
        """Change of J when a group with counts ``x`` moves from ``src`` to ``dst``."""
        shift = self.error[dst] - self.error[src]
        return float(((2 * x * shift + 2 * x * x) * self.weights).sum())

    def swap_costs(self, x: np.ndarray, src: int, others: np.ndarray,
                   dst: np.ndarray) -> np.ndarray:
        """Change of J for swapping a group in ``src`` with each ``others[i]`` in ``dst[i]``."""
        d = others - x
        return ((2 * d * (self.error[src] - self.error[dst]) + 2 * d * d) * self.weights).sum(axis=1)

    def add(self, x: np.ndarray, split: int, sign: float = 1.0) -> None:
        self.error[split] += sign * x


def _greedy(counts: np.ndarray, allowed: np.ndarray, obj: _Objective,
            rng: np.random.Generator) -> np.ndarray:
    """Place groups one by one (seeded order) where J grows least; fill empty splits first
    when only as many groups are left as there are empty allowed splits."""
    assignment = np.full(len(counts), -1)
    order = rng.permutation(len(counts))
    for left, g in zip(range(len(order), 0, -1), order):
        empty = [s for s in allowed if not np.any(assignment == s)]
        candidates = empty if left <= len(empty) else list(allowed)
        costs = np.array([obj.place_cost(counts[g], s) for s in candidates])
        best = np.flatnonzero(np.isclose(costs, costs.min(), rtol=0, atol=1e-12))
        assignment[g] = candidates[int(rng.choice(best))]
        obj.add(counts[g], assignment[g])
    return assignment


def _try_move(g: int, counts: np.ndarray, assignment: np.ndarray, allowed: np.ndarray,
              obj: _Objective) -> bool:
    src = assignment[g]
    if np.count_nonzero(assignment == src) < 2:
        return False  # never empty a split
    costs = {s: obj.move_cost(counts[g], src, s) for s in allowed if s != src}
    dst = min(costs, key=costs.__getitem__, default=None)
    if dst is None or costs[dst] >= -1e-12:
        return False
    obj.add(counts[g], src, -1.0)
    obj.add(counts[g], dst)
    assignment[g] = dst
    return True


def _try_swap(g: int, counts: np.ndarray, assignment: np.ndarray, obj: _Objective) -> bool:
    src = assignment[g]
    others = np.flatnonzero(assignment != src)
    if others.size == 0:
        return False
    costs = obj.swap_costs(counts[g], src, counts[others], assignment[others])
    best = int(np.argmin(costs))
    if costs[best] >= -1e-12:
        return False
    h, dst = others[best], assignment[others[best]]
    for group, a, b in ((g, src, dst), (h, dst, src)):
        obj.add(counts[group], a, -1.0)
        obj.add(counts[group], b)
        assignment[group] = b
    return True


def _improve(counts: np.ndarray, assignment: np.ndarray, allowed: np.ndarray, obj: _Objective,
             rng: np.random.Generator) -> np.ndarray:
    """Single moves and pairwise swaps that lower J, in a seeded order, until none helps."""
    swaps = len(counts) <= MAX_GROUPS_FOR_SWAPS
    for _ in range(MAX_PASSES):
        improved = False
        for g in rng.permutation(len(counts)):
            moved = _try_move(g, counts, assignment, allowed, obj)
            improved |= moved or (swaps and _try_swap(g, counts, assignment, obj))
        if not improved:
            break
    return assignment


def grouped_split(labels: Sequence[Sequence[str]], groups: Sequence[str],
                  ratios: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, *,
                  group_name: str = "group") -> list[str]:
    """Assign each item to ``train``, ``validation`` or ``test``, whole groups at a time.

    Parameters
    ----------
    labels : sequence of sequence of str
        The labels of each item (multi-label; an empty list is allowed and only counts towards
        the split sizes).
    groups : sequence of str
        The group of each item (site, deployment, device, site-night...). All items of a group
        land in the same split.
    ratios : three floats
        Target fractions of items for train, validation and test; non-negative, summing to 1.
        A zero ratio leaves that split empty.
    seed : int
        Seeds the placement order; the same inputs and seed always give the same result.
    group_name : str
        What the groups are, for error messages (``"site"``).

    Returns
    -------
    list of str
        One split name per item, in input order.

    Raises
    ------
    ValidationError
        When the ratios are invalid, ``labels`` and ``groups`` differ in length, or there are
        fewer groups than splits with a non-zero ratio.
    """
    r = _check_ratios(ratios)
    group_ids, counts = _group_counts(labels, groups)
    _check_enough_groups(len(group_ids), r, group_name)
    rng = np.random.default_rng(seed)
    allowed = np.flatnonzero(r > 0)
    obj = _Objective(counts, r)
    assignment = _improve(counts, _greedy(counts, allowed, obj, rng), allowed, obj, rng)
    by_group = {g: SPLITS[s] for g, s in zip(group_ids, assignment)}
    return [by_group[g] for g in groups]


def split_manifest_hash(items: Sequence[tuple[str, str]]) -> str:
    """SHA-256 (hex) of the canonical, sorted list of ``(item id, split)`` pairs.

    Independent of item order; two manifests hash equal exactly when they assign the same
    items to the same splits. The canonical form is compact UTF-8 JSON of the sorted pairs.
    """
    pairs = sorted((str(item), str(split)) for item, split in items)
    canonical = json.dumps(pairs, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
