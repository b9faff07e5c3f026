"""A small layered layout for the lineage graph (a DAG of versions), in the spirit of
Sugiyama's method, reduced to what a version history needs:

1. **layers**: a version sits one layer above its highest parent (longest path from the
   roots), so every edge points up and a chain of N versions takes N layers;
2. **lanes**: within a layer, each version wants the mean lane of its parents (a chain stays
   in its lane, a fork moves one lane over, a merge sits between its parents); versions
   are placed in that order, each at least one lane right of the one before. Roots (first
   versions, adapters started from scratch) open a new lane each.

Linear in the number of versions and edges: 1,000 versions lay out in milliseconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where each node goes: ``layer`` (0 = oldest) and ``lane`` (0 = leftmost)."""

    layer: dict[Hashable, int]
    lane: dict[Hashable, int]
    layers: int
    lanes: int


def layered_layout(nodes: Sequence[Hashable], parents: Mapping[Hashable, Sequence[Hashable]]) -> Placement:
    """Lay out ``nodes`` (oldest first, as far as known) given each node's ``parents``
    (parents outside ``nodes`` are ignored; a cycle, which a history cannot have, is cut)."""
    known = set(nodes)
    parents_of = {n: [p for p in parents.get(n, ()) if p in known and p != n] for n in nodes}
    order = _topological(nodes, parents_of)
    layer: dict[Hashable, int] = {}
    for n in order:
        layer[n] = 1 + max((layer[p] for p in parents_of[n] if p in layer), default=-1)
    by_layer: dict[int, list[Hashable]] = {}
    for n in order:
        by_layer.setdefault(layer[n], []).append(n)
    lane: dict[Hashable, int] = {}
    next_root_lane = 0
    width = 0
    for index in sorted(by_layer):
        wanted: list[tuple[float, int, Hashable]] = []
        for position, n in enumerate(by_layer[index]):
            placed = [lane[p] for p in parents_of[n] if p in lane]
            if placed:
                want = sum(placed) / len(placed)
            else:
                want = float(next_root_lane)
                next_root_lane += 1
            wanted.append((want, position, n))
        wanted.sort(key=lambda w: (w[0], w[1]))
        previous = -1
        for want, _, n in wanted:
            at = max(round(want), previous + 1)
            lane[n] = at
            previous = at
            width = max(width, at + 1)
        next_root_lane = max(next_root_lane, previous + 1)
    return Placement(layer, lane, (max(layer.values()) + 1) if layer else 0, width)


def _topological(nodes: Sequence[Hashable], parents_of: Mapping[Hashable, list[Hashable]]) -> list[Hashable]:
    """Parents before children, otherwise in the given order (Kahn's algorithm)."""
    children: dict[Hashable, list[Hashable]] = {n: [] for n in nodes}
    waiting = {n: len(parents_of[n]) for n in nodes}
    for n in nodes:
        for p in parents_of[n]:
            children[p].append(n)
    rank = {n: i for i, n in enumerate(nodes)}
    ready = [n for n in nodes if waiting[n] == 0]
    out: list[Hashable] = []

    heap = [(rank[n], n) for n in ready]
    heapq.heapify(heap)
    done: set[Hashable] = set()
    while len(out) < len(nodes):
        if not heap:  # a cycle: release the oldest node still waiting
            n = min((m for m in nodes if m not in done), key=rank.__getitem__)
            heapq.heappush(heap, (rank[n], n))
            waiting[n] = 0
        _, n = heapq.heappop(heap)
        if n in done:
            continue
        done.add(n)
        out.append(n)
        for c in children[n]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, (rank[c], c))
    return out
