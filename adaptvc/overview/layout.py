"""A small layered layout for the lineage graph (a DAG of versions), in the spirit of
Sugiyama's method, reduced to what a version history needs:

1. **layers**: a version sits one layer above its highest parent (longest path from the
   roots), so every edge points up and a chain of N versions takes N layers;
2. **chains**: each version hands its lane on to one child whose first parent it is,
   the one with the longest line of descendants, so the main line of work stays
   straight and short-lived branches (a sweep abandoned after a few versions) become
   side chains;
3. **lanes**: chains, in the order they start, take the free lane nearest to their
   parent's (a lane is free again once the chain in it has ended), so a history with
   hundreds of dead ends stays a few lanes wide.

Linear in the number of versions and edges, times the number of lanes: 1,000 versions
lay out in milliseconds.
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
    # Height: the longest line of descendants below each node (reverse topological order).
    first_children: dict[Hashable, list[Hashable]] = {n: [] for n in nodes}
    for n in order:
        if parents_of[n]:
            first_children[parents_of[n][0]].append(n)
    height: dict[Hashable, int] = {}
    for n in reversed(order):
        height[n] = 1 + max((height[c] for c in first_children[n]), default=0)
    # Chains: follow the tallest first-child (the oldest among equals).
    chains: list[list[Hashable]] = []
    chained: set[Hashable] = set()
    for n in order:
        if n in chained:
            continue
        chain = [n]
        chained.add(n)
        while True:
            nexts = [c for c in first_children[chain[-1]] if c not in chained]
            if not nexts:
                break
            best = max(nexts, key=lambda c: height[c])  # max() keeps the first (oldest) of equals
            chain.append(best)
            chained.add(best)
        chains.append(chain)
    lane: dict[Hashable, int] = {}
    busy_until: list[int] = []  # per lane: the last layer its chain occupies
    for chain in sorted(chains, key=lambda c: layer[c[0]]):
        start, end = layer[chain[0]], layer[chain[-1]]
        origin = parents_of[chain[0]]
        home = lane[origin[0]] if origin and origin[0] in lane else 0
        free = [i for i, until in enumerate(busy_until) if until < start]
        at = min(free, key=lambda i: (abs(i - home), i)) if free else len(busy_until)
        if at == len(busy_until):
            busy_until.append(end)
        else:
            busy_until[at] = end
        for n in chain:
            lane[n] = at
    return Placement(layer, lane, (max(layer.values()) + 1) if layer else 0, len(busy_until))


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
