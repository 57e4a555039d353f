"""Connected components, bucket edges and the lazy join in Beam, checked against plain Python."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from gristmill.transforms.dedup.components import ConnectedComponents
from gristmill.transforms.dedup.joins import AttachEndpoints, JoinOneToMany, ValuesOfEndpoints
from gristmill.transforms.dedup.lsh import BucketEdges

# Collected outputs: module-level, so the in-process runner appends to this very dict.
SINK: dict[str, list] = {}


def _append(item, key: str) -> None:
    SINK.setdefault(key, []).append(item)


def collect(pcoll, key: str) -> None:
    SINK.pop(key, None)
    pcoll | f"Collect/{key}" >> beam.Map(_append, key)


def union_find_roots(edges: list[tuple]) -> dict:
    """node -> smallest node of its component, for every node in an edge (the reference)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def run_components(edges: list[tuple], rounds: int) -> tuple[dict, list]:
    with beam.Pipeline(runner=FnApiRunner()) as p:
        cc = p | beam.Create(edges) | ConnectedComponents("test", rounds)
        collect(cc.labels, "labels")
        collect(cc.unsettled, "unsettled")
    return dict(SINK.get("labels", [])), SINK.get("unsettled", [])


def graphs() -> list[tuple]:
    """Disjoint graphs in one edge list: chains in sorted, reversed and shuffled label order, a
    star, a clique, a binary tree, two-node pieces and a cycle."""
    rng = random.Random(7)
    edges: list[tuple] = []

    def node(group: str, i: int) -> tuple[int, str]:
        return (0, f"{group}{i:04d}")

    edges += [(node("c", i), node("c", i + 1)) for i in range(63)]  # sorted chain
    edges += [(node("r", 64 - i), node("r", 63 - i)) for i in range(63)]  # reversed
    order = list(range(64))
    rng.shuffle(order)
    edges += [(node("s", order[i]), node("s", order[i + 1])) for i in range(63)]  # shuffled
    edges += [(node("t", 50), node("t", i)) for i in range(50)]  # star around a middle node
    edges += [(node("k", i), node("k", j)) for i in range(8) for j in range(i + 1, 8)]  # clique
    edges += [(node("b", i), node("b", (i - 1) // 2)) for i in range(1, 40)]  # binary tree
    edges += [(node("p", 2 * i), node("p", 2 * i + 1)) for i in range(5)]  # pairs
    edges += [(node("y", i), node("y", (i + 1) % 12)) for i in range(12)]  # cycle
    edges += [(node("c", 5), node("c", 6))]  # a duplicate edge
    rng.shuffle(edges)
    return edges


@pytest.mark.job
def test_components_match_union_find():
    edges = graphs()
    labels, unsettled = run_components(edges, rounds=8)
    reference = union_find_roots(edges)
    roots = {n for n, r in reference.items() if n == r}
    assert unsettled == []
    assert set(labels) == set(reference) - roots  # every non-root node, once
    assert all(labels[n] == reference[n] for n in labels)
    assert len(roots) == 7 + 5  # six multi-node graphs and a cycle, plus five pairs


@pytest.mark.job
def test_too_few_rounds_are_counted_and_lose_nothing():
    edges = [((0, f"n{i:03d}"), (0, f"n{i + 1:03d}")) for i in range(200)]
    labels, unsettled = run_components(edges, rounds=2)
    assert unsettled, "a 201-node chain cannot settle in 2 rounds"
    root = (0, "n000")
    assert root not in labels  # the true survivor is never dropped
    # every labelled node points to a smaller node of the same component
    assert all(parent < node for node, parent in labels.items())


def test_bucket_edges_pairs_and_star():
    fn = BucketEdges("test", max_size=4)
    fn.setup()
    small = list(fn.process(("k", [(0, "d"), (0, "b"), (0, "c")])))
    assert sorted(small) == [((0, "b"), (0, "c")), ((0, "b"), (0, "d")), ((0, "c"), (0, "d"))]
    members = [(0, f"m{i:04d}") for i in range(2000)]
    random.Random(1).shuffle(members)
    star = list(fn.process(("k", members)))
    assert len(star) == 1999
    assert {a for a, _ in star} == {(0, "m0000")}
    assert list(fn.process(("k", [(0, "alone")]))) == []


@pytest.fixture(scope="module")
def joined():
    with beam.Pipeline(runner=FnApiRunner()) as p:
        one = p | "One" >> beam.Create([("a", 1), ("b", 2)])
        many = p | "Many" >> beam.Create([("a", "x"), ("a", "y"), ("c", "z")])
        collect((one, many) | JoinOneToMany(), "join")
        edges = p | "Edges" >> beam.Create([((0, "a"), (0, "b")), ((0, "a"), (0, "zz"))])
        collect((edges, one) | AttachEndpoints("test", lambda n: n[1]), "attach")
        more = p | "More" >> beam.Create([("a", 1), ("b", 2), ("unused", 3)])
        collect((edges, more) | ValuesOfEndpoints(lambda n: n[1]), "used")
    return {k: SINK.get(k, []) for k in ("join", "attach", "used")}


@pytest.mark.job
def test_join_one_to_many(joined):
    assert sorted(joined["join"], key=str) == [("a", 1, "x"), ("a", 1, "y"), ("c", None, "z")]


def test_attach_endpoints_skips_edges_without_values(joined):
    assert joined["attach"] == [((0, "a"), (0, "b"), 1, 2)]


def test_values_of_endpoints_keeps_only_nodes_in_edges(joined):
    assert sorted(joined["used"]) == [("a", 1), ("b", 2)]
