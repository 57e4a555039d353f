"""Graph steps in Beam: a lazy one-to-many join, edge endpoint values, bucket edges, connected
components.

Nothing here collects a graph, a component or a node's neighbourhood in a Python structure: every
grouped iterable is read in at most two streaming passes (a Beam grouped iterable may be read more
than once; a runner that pages large groups, like Dataflow's, then never holds one in memory).

Connected components: alternating large-star / small-star rounds (Kiveris et al., "Connected
Components in MapReduce and Beyond", SoCC 2014), unrolled `max_rounds` times in the graph. Node
keys are totally ordered; every component ends as a star around its smallest node. The number of
edges never grows from round to round. Each round counts the edges it changed
(`components.round<i>.changed`); a round that changes nothing leaves a star forest, after which the
remaining rounds copy their input. Rounds needed grow like log2 of a component's size (a path of
n nodes, the slowest shape we know of: 1,000 nodes in 10 rounds, 100,000 in 17), so the default of
16 rounds finishes any near-duplicate cluster short of a 50,000-document chain; dense clusters take
2 or 3. The final `Roots` step checks the result (each node at most one smaller neighbour, and no
node both a root and a leaf) and counts unsettled nodes (`components.unsettled`): an unsettled
component keeps more than one survivor, it never loses a document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

ONE, MANY = 0, 1


def _tag(tag: int):
    return lambda kv: (kv[0], (tag, kv[1]))


class _EmitJoined(beam.DoFn):
    """(key, [(ONE, v) x0..1, (MANY, w) x n]) -> (key, v or None, w) per w, in two passes."""

    def process(self, keyed):
        key, values = keyed
        one = None
        for tag, value in values:  # pass 1: find the single ONE value, if any
            if tag == ONE:
                one = value
                break
        for tag, value in values:  # pass 2: stream the MANY side
            if tag == MANY:
                yield key, one, value


class JoinOneToMany(beam.PTransform):
    """(k, v) with at most one v per key, joined to (k, w): yields (k, v or None, w) for each w.

    Unlike CoGroupByKey, which builds a list per key, the MANY side is streamed."""

    def expand(self, pcolls):
        one, many = pcolls
        return (
            (one | "TagOne" >> beam.Map(_tag(ONE)), many | "TagMany" >> beam.Map(_tag(MANY)))
            | "Flatten" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Emit" >> beam.ParDo(_EmitJoined())
        )


class _Used(beam.DoFn):
    """(key, [(ONE, value) x0..1, (MANY, None) x n]) -> (key, value) when n > 0; one pass."""

    def process(self, keyed):
        key, values = keyed
        value, used = None, False
        for tag, item in values:
            if tag == ONE:
                value = item
            else:
                used = True
            if used and value is not None:
                yield key, value
                return


class ValuesOfEndpoints(beam.PTransform):
    """Edges (a, b) + node values (id_of(node), value) -> the values of nodes in some edge.

    Run once before the joins of AttachEndpoints, it makes them shuffle the values of candidate
    nodes only, where every node's value would cross the wire in each join otherwise."""

    def __init__(self, id_of: Callable[[Any], Any]):
        super().__init__()
        self.id_of = id_of

    def expand(self, pcolls):
        edges, values = pcolls
        id_of = self.id_of
        return (
            (
                values | "TagValues" >> beam.Map(_tag(ONE)),
                edges
                | "Mentions"
                >> beam.FlatMap(
                    lambda e: [(id_of(e[0]), (MANY, None)), (id_of(e[1]), (MANY, None))]
                ),
            )
            | "Flatten" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Used" >> beam.ParDo(_Used())
        )


class AttachEndpoints(beam.PTransform):
    """Edges (a, b) of nodes + node values (id_of(node), value) -> (a, b, value_a, value_b).

    Two joins: first keyed by a (a star centre's edges stream past its one value), then by b.
    Edges whose endpoint has no value are counted (`<stage>/_all.edge_without_value`) and left out.
    """

    def __init__(self, stage: str, id_of: Callable[[Any], Any]):
        super().__init__()
        self.stage = stage
        self.id_of = id_of

    def expand(self, pcolls):
        edges, values = pcolls
        id_of = self.id_of
        missing = Metrics.counter(self.stage, "_all.edge_without_value")

        def by_b(joined):
            _, value_a, (a, b) = joined
            if value_a is None:
                missing.inc()
                return []
            return [(id_of(b), (a, b, value_a))]

        def finish(joined):
            _, value_b, (a, b, value_a) = joined
            if value_b is None:
                missing.inc()
                return []
            return [(a, b, value_a, value_b)]

        first = (
            values,
            edges | "KeyByA" >> beam.Map(lambda e: (id_of(e[0]), e)),
        ) | "JoinA" >> JoinOneToMany()
        second = (values, first | "KeyByB" >> beam.FlatMap(by_b)) | "JoinB" >> JoinOneToMany()
        return second | "Finish" >> beam.FlatMap(finish)


class _StarRound(beam.DoFn):
    """One star step over (node, neighbours); counts the edges it moves in its round."""

    def __init__(self, stage: str, round_no: int):
        self.stage = stage
        self.round_no = round_no

    def setup(self):
        self.changed = Metrics.counter(self.stage, f"components.round{self.round_no}.changed")


class _LargeStar(_StarRound):
    """Node u, all neighbours: link every larger neighbour to the smallest of u and its neighbours."""

    def process(self, keyed):
        u, neighbours = keyed
        m = min(u, min(neighbours, default=u))
        for v in neighbours:
            if v > u:
                if m != u:
                    self.changed.inc()
                yield m, v


class _SmallStar(_StarRound):
    """Node u, its smaller neighbours: link them and u to the smallest of them."""

    def process(self, keyed):
        u, smaller = keyed
        m = min(u, min(smaller, default=u))
        for v in smaller:
            if v != m:
                self.changed.inc()
                yield m, v
        yield m, u


def _both_ways(edge):
    a, b = edge
    return [(a, b), (b, a)]


class _NodeView(beam.CombineFn):
    """Per node: (smallest smaller neighbour or None, >1 distinct smaller neighbours, has larger)."""

    def create_accumulator(self):
        return (None, False, False)

    def add_input(self, acc, item):
        return self.merge_accumulators([acc, item])

    def merge_accumulators(self, accs):
        parent, several, child = None, False, False
        for p, s, c in accs:
            several = several or s or (p is not None and parent is not None and p != parent)
            if p is not None and (parent is None or p < parent):
                parent = p
            child = child or c
        return parent, several, child

    def extract_output(self, acc):
        return acc


class _Roots(beam.DoFn):
    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        self.unsettled = Metrics.counter(self.stage, "components.unsettled")

    def process(self, keyed):
        node, (parent, several, child) = keyed
        if parent is None:
            return
        if several or child:
            self.unsettled.inc()
            yield beam.pvalue.TaggedOutput("unsettled", node)
        yield node, parent


class ConnectedComponents(beam.PTransform):
    """Undirected edges (a, b) of comparable nodes -> (node, root) for every non-root node in an
    edge, root = the smallest node of its component; tagged output "unsettled": nodes the rounds
    did not finish (see the module docstring)."""

    def __init__(self, stage: str, max_rounds: int):
        super().__init__()
        self.stage = stage
        self.max_rounds = max_rounds

    def expand(self, edges):
        e = edges | "Orient" >> beam.Map(lambda ab: (min(ab), max(ab)))
        for i in range(self.max_rounds):
            e = (
                e
                | f"LargeStar{i}/Both" >> beam.FlatMap(_both_ways)
                | f"LargeStar{i}/Group" >> beam.GroupByKey()
                | f"LargeStar{i}/Link" >> beam.ParDo(_LargeStar(self.stage, i))
            )
            e = (
                e
                | f"SmallStar{i}/Up" >> beam.Map(lambda ab: (ab[1], ab[0]))
                | f"SmallStar{i}/Group" >> beam.GroupByKey()
                | f"SmallStar{i}/Link" >> beam.ParDo(_SmallStar(self.stage, i))
            )
        views = (
            e
            | "Views"
            >> beam.FlatMap(
                lambda ab: [(ab[1], (ab[0], False, False)), (ab[0], (None, False, True))]
            )
            | "View" >> beam.CombinePerKey(_NodeView())
        )
        return views | "Roots" >> beam.ParDo(_Roots(self.stage)).with_outputs(
            "unsettled", main="labels"
        )


class BucketEdges(beam.DoFn):
    """(LSH bucket, member nodes) -> candidate edges (a, b), a < b.

    A bucket of at most `max_size` members gives every pair; a larger one gives a star from its
    smallest member to every other, found in one streaming pass and emitted in a second, so a
    bucket of 100,000 identical documents costs 99,999 edges and no list. Counted per bucket:
    `_all.buckets_pairs`, `_all.buckets_star`."""

    def __init__(self, stage: str, max_size: int):
        self.stage = stage
        self.max_size = max_size

    def setup(self):
        self.pairs = Metrics.counter(self.stage, "_all.buckets_pairs")
        self.star = Metrics.counter(self.stage, "_all.buckets_star")

    def process(self, keyed):
        _, members = keyed
        smallest, n, held = None, 0, []
        for v in members:
            n += 1
            if smallest is None or v < smallest:
                smallest = v
            if n <= self.max_size:
                held.append(v)
            elif held:
                held = []
        if n < 2:
            return
        if n <= self.max_size:
            self.pairs.inc()
            nodes = sorted(set(held))
            for i, a in enumerate(nodes):
                for b in nodes[i + 1 :]:
                    yield a, b
            return
        self.star.inc()
        for v in members:
            if v != smallest:
                yield smallest, v
