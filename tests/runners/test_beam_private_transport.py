"""The local runner's worker input in bounded pieces (runners/beam_private.py).

Two SDK worker processes, a grouped PCollection far larger than one chunk: the groups reach the
workers whole and complete, the runner cut them into many messages, and none of those holds more
than one chunk plus one group. The demo job's byte-identical 2- and 4-worker runs
(test_corpus_job.py) run with the same transport.
"""

from __future__ import annotations

import sys

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.runners.portability.fn_api_runner import execution, fn_runner
from apache_beam.testing.util import assert_that, equal_to

from gristmill.runners import beam_private as local_transport
from gristmill.runners.local.runner import local_runner

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/


@pytest.fixture
def small_chunks(monkeypatch):
    """The transport with 4 KB chunks, recording what each partition holds and every message
    the driver writes to a worker; the runner's own transport again afterwards."""
    local_transport.uninstall_transport()
    monkeypatch.setattr(local_transport, "CHUNK_BYTES", 4096)
    local_transport.install_transport()
    parts: list[list[int]] = []
    sent: list[int] = []
    partition = execution.GroupingBuffer.partition

    def watched(self, n):
        out = partition(self, n)
        parts.extend([len(b) for b in part] for part in out)
        return out

    monkeypatch.setattr(execution.GroupingBuffer, "partition", watched)
    from apache_beam.runners.worker import data_plane

    flush = data_plane.SizeBasedBufferingClosableOutputStream.flush

    def counted(self):
        sent.append(self.size())
        return flush(self)

    monkeypatch.setattr(data_plane.SizeBasedBufferingClosableOutputStream, "flush", counted)
    yield parts, sent
    monkeypatch.undo()
    local_transport.uninstall_transport()
    local_transport.install_transport()


def _group_sizes(words: int):
    rows = [(f"k{i % 300:03d}", "w" * (1 + i % 40)) for i in range(words)]
    want: dict[str, list[int]] = {}
    for key, value in rows:
        want.setdefault(key, [0, 0])
        want[key][0] += 1
        want[key][1] += len(value)
    return rows, [(k, n, b) for k, (n, b) in want.items()]


@pytest.mark.job
def test_grouped_input_reaches_two_workers_in_chunks(small_chunks):
    parts, sent = small_chunks
    rows, want = _group_sizes(30_000)
    runner, options = local_runner(2)
    with beam.Pipeline(runner=runner, options=options) as p:
        got = (
            p
            | beam.Create(rows, reshuffle=False)
            | "Group" >> beam.GroupByKey()
            | beam.MapTuple(lambda k, vs: (k, len(list(vs)), sum(len(v) for v in vs)))
        )
        assert_that(got, equal_to(want))
    grouped = [p for p in parts if sum(p) > 100_000]  # the 300 groups of 30,000 words
    assert len(grouped) == 2, parts  # one share per worker
    for share in grouped:
        assert len(share) > 20  # cut into many chunks ...
        assert max(share) < 4096 + 4096  # ... each one chunk plus at most one group
    assert sum(1 for n in sent if 0 < n < 8192) > 40  # and sent as that many messages


def test_install_is_idempotent_and_reversible():
    from apache_beam.runners.worker import data_plane

    local_transport.uninstall_transport()
    stock_partition = execution.GroupingBuffer.partition
    stock_send = fn_runner.BundleManager._send_input_to_worker
    stock_message = data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD
    assert stock_message > local_transport.CHUNK_BYTES
    try:
        local_transport.install_transport()
        patched = execution.GroupingBuffer.partition
        assert patched is not stock_partition
        assert fn_runner.BundleManager._send_input_to_worker is not stock_send
        assert data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD == local_transport.CHUNK_BYTES
        local_transport.install_transport()
        assert execution.GroupingBuffer.partition is patched  # not wrapped twice
        local_transport.uninstall_transport()
        assert execution.GroupingBuffer.partition is stock_partition
        assert fn_runner.BundleManager._send_input_to_worker is stock_send
        assert stock_message == data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD
    finally:
        local_transport.install_transport()


def _worker_facts(_):
    import os

    from apache_beam.runners.worker import data_plane

    queue = data_plane._DEFAULT_SEND_QUEUE_MAX_BYTES
    return os.getpid(), (queue, data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD)


@pytest.mark.job
def test_workers_are_processes_with_small_buffers():
    import os

    from gristmill.runners.beam_private import CHUNK_BYTES as MESSAGE_BYTES
    from gristmill.runners.beam_private import SEND_QUEUE_BYTES

    driver = os.getpid()

    def check(facts):  # runs in a worker; a failure fails the pipeline
        assert len(facts) == 200, len(facts)
        assert all(pid != driver for pid, _ in facts), "ran in the driver"
        assert {f for _, f in facts} == {(SEND_QUEUE_BYTES, MESSAGE_BYTES)}, set(facts)

    runner, options = local_runner(2)
    with beam.Pipeline(runner=runner, options=options) as p:
        facts = p | beam.Create(range(200)) | beam.Reshuffle() | beam.Map(_worker_facts)
        assert_that(facts, check)


@pytest.fixture
def grpc_messages(monkeypatch):
    """The size of every gRPC data message the driver sends to or receives from a worker."""
    from apache_beam.runners.worker import data_plane

    sizes: dict[str, list[int]] = {"sent": [], "received": []}
    channel = data_plane._GrpcDataChannel
    write, read = channel._write_outputs, channel._read_inputs

    def written(self):
        for message in write(self):
            sizes["sent"].append(message.ByteSize())
            yield message

    def received(self, elements):
        def seen():
            for message in elements:
                sizes["received"].append(message.ByteSize())
                yield message

        return read(self, seen())

    monkeypatch.setattr(channel, "_write_outputs", written)
    monkeypatch.setattr(channel, "_read_inputs", received)
    return sizes


ELEMENT, KEYS, PER_KEY = 4000, 500, 12  # a group: 12 values of ~4 KB


def _padded(i: int) -> str:
    """About ELEMENT characters, made in the worker: 24 MB never passes through the graph."""
    return str(i) * (ELEMENT // len(str(i)))


@pytest.mark.job
def test_data_moves_in_messages_of_about_one_chunk(grpc_messages):
    """24 MB through a shuffle between two workers: Beam would join queued pieces into gRPC
    messages of up to 10 MB, held whole by whoever receives them."""
    n = KEYS * PER_KEY
    runner, options = local_runner(2)
    with beam.Pipeline(runner=runner, options=options) as p:
        sizes = (
            p
            | beam.Create(range(n))
            | "Pad" >> beam.Map(lambda i: (i % KEYS, _padded(i)))
            | "Group" >> beam.GroupByKey()
            | "Total" >> beam.MapTuple(lambda k, vs: sum(map(len, vs)))
            | beam.CombineGlobally(sum)
        )
        assert_that(sizes, equal_to([sum(len(_padded(i)) for i in range(n))]))
    sent, received = grpc_messages["sent"], grpc_messages["received"]
    assert sum(sent) > 20e6 and sum(received) > 20e6, (sum(sent), sum(received))
    limit = local_transport.CHUNK_BYTES + PER_KEY * ELEMENT + 1024
    assert max(sent) < limit and max(received) < limit, (max(sent), max(received))


def test_large_pieces_are_recut_at_element_boundaries(monkeypatch):
    from apache_beam.coders import coders
    from apache_beam.coders.coder_impl import create_InputStream, create_OutputStream
    from apache_beam.transforms.window import GlobalWindows

    monkeypatch.setattr(local_transport, "CHUNK_BYTES", 1000)
    coder = coders.WindowedValueCoder(coders.StrUtf8Coder()).get_impl()
    values = [f"element {i} " * (1 + i % 7) for i in range(2000)]
    out = create_OutputStream()
    for v in values:
        coder.encode_to_stream(GlobalWindows.windowed_value(v), out, True)
    stream = out.get()

    pieces = local_transport._pieces(stream, coder)
    assert len(pieces) > 20 and max(map(len, pieces)) < 1000 + 200
    decoded = []
    for piece in pieces:  # every piece decodes on its own: whole elements only
        source = create_InputStream(piece)
        while source.size() > 0:
            decoded.append(coder.decode_from_stream(source, True).value)
    assert decoded == values
    # bytes the coder cannot read go as they came; small ones are never cut
    assert local_transport._pieces(b"\xff" * 5000, coder) == [b"\xff" * 5000]
    assert local_transport._pieces(stream[:1500], coder) == [stream[:1500]]
