"""Joins in Beam: a lazy one-to-many join, and the values of an edge's endpoints.

Nothing here collects a graph, a component or a node's neighbourhood in a Python structure: every
grouped iterable is read in at most two streaming passes (a Beam grouped iterable may be read more
than once; a runner that pages large groups, like Dataflow's, then never holds one in memory).

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
