"""HeadTailBuffer: what it keeps, what it counts and how it renders, at every boundary."""

from __future__ import annotations

import random
import threading

import pytest

from codex_orchestrator.exec.buffer import DEFAULT_MARKER, HeadTailBuffer


def expected(stream: bytes, head_bytes: int, tail_bytes: int) -> tuple[bytes, bytes, int]:
    """The reference model: head, tail (never overlapping the head) and omitted count."""
    head = stream[:head_bytes]
    rest = stream[head_bytes:]
    tail = rest[-tail_bytes:] if tail_bytes else b""
    return head, tail, len(stream) - len(head) - len(tail)


def assert_matches(buffer: HeadTailBuffer, stream: bytes, head_bytes: int, tail_bytes: int) -> None:
    head, tail, omitted = expected(stream, head_bytes, tail_bytes)
    assert buffer.head == head
    assert buffer.tail == tail
    assert buffer.omitted_bytes == omitted
    assert buffer.total_bytes == len(stream)
    assert len(buffer) == len(head) + len(tail)


def test_empty_buffer_keeps_nothing() -> None:
    buffer = HeadTailBuffer(4, 4)
    assert_matches(buffer, b"", 4, 4)
    assert buffer.render() == ""
    assert buffer.tail_text(10) == ""


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 7, 8, 9, 10, 20])
def test_every_length_around_the_boundaries(length: int) -> None:
    # head 4 + tail 4: lengths below, at and past each limit.
    stream = bytes(range(65, 65 + length))
    buffer = HeadTailBuffer(4, 4)
    buffer.append(stream)
    assert_matches(buffer, stream, 4, 4)


def test_exactly_head_plus_tail_omits_nothing_and_renders_contiguously() -> None:
    buffer = HeadTailBuffer(3, 3)
    buffer.append(b"abcdef")
    assert (buffer.head, buffer.tail, buffer.omitted_bytes) == (b"abc", b"def", 0)
    assert buffer.render() == "abcdef"


def test_one_byte_past_head_plus_tail_is_omitted() -> None:
    buffer = HeadTailBuffer(3, 3)
    buffer.append(b"abcdefg")
    assert (buffer.head, buffer.tail, buffer.omitted_bytes) == (b"abc", b"efg", 1)
    assert buffer.render() == "abc\n… 1 bytes omitted …\nefg"


@pytest.mark.parametrize(
    ("head_bytes", "tail_bytes"), [(0, 0), (0, 5), (5, 0), (1, 1), (7, 3), (3, 7), (64, 64)]
)
def test_any_split_of_the_stream_gives_the_same_result(head_bytes: int, tail_bytes: int) -> None:
    rng = random.Random(f"{head_bytes}/{tail_bytes}")
    stream = bytes(rng.randrange(256) for _ in range(500))
    for _ in range(20):
        buffer = HeadTailBuffer(head_bytes, tail_bytes)
        position = 0
        while position < len(stream):
            step = rng.choice([0, 1, 2, 3, tail_bytes, tail_bytes + 1, 2 * tail_bytes + 1, 50])
            buffer.append(stream[position : position + step])
            position += step
            assert_matches(buffer, stream[:position], head_bytes, tail_bytes)


def test_byte_at_a_time_equals_one_append() -> None:
    stream = b"".join(b"line %d\n" % i for i in range(1000))
    one = HeadTailBuffer(100, 200)
    one.append(stream)
    many = HeadTailBuffer(100, 200)
    for byte in stream:
        many.append(bytes([byte]))
    assert (one.head, one.tail, one.omitted_bytes, one.total_bytes) == (
        many.head,
        many.tail,
        many.omitted_bytes,
        many.total_bytes,
    )


def test_a_chunk_larger_than_the_tail_replaces_it() -> None:
    buffer = HeadTailBuffer(2, 4)
    buffer.append(b"ab" + b"x" * 10)
    buffer.append(b"0123456789")
    assert (buffer.head, buffer.tail, buffer.omitted_bytes) == (b"ab", b"6789", 16)


def test_memory_stays_bounded_over_a_long_stream() -> None:
    buffer = HeadTailBuffer(1024, 1024)
    chunk = bytes(range(256)) * 4
    for _ in range(10_000):
        buffer.append(chunk)
    assert len(buffer) == 2048
    assert buffer.total_bytes == 10_000 * len(chunk)
    assert buffer.omitted_bytes == buffer.total_bytes - 2048


def test_render_uses_a_custom_marker() -> None:
    buffer = HeadTailBuffer(2, 2)
    buffer.append(b"ab----yz")
    assert buffer.render(marker="[{omitted} skipped]") == "ab[4 skipped]yz"
    assert DEFAULT_MARKER.format(omitted=12345) == "\n… 12345 bytes omitted …\n"


def test_render_keeps_a_character_split_between_head_and_tail_when_nothing_is_omitted() -> None:
    text = "aé€😀b"  # 1, 2, 3 and 4 byte characters
    encoded = text.encode()
    for head_bytes in range(len(encoded) + 1):
        buffer = HeadTailBuffer(head_bytes, len(encoded))
        buffer.append(encoded)
        assert buffer.render() == text


def test_render_replaces_a_character_cut_by_the_omission() -> None:
    buffer = HeadTailBuffer(2, 2)
    buffer.append("a€-----z".encode())  # the head ends inside "€"
    assert buffer.render(marker="|") == "a\ufffd|-z"


def test_tail_text_returns_the_last_bytes() -> None:
    buffer = HeadTailBuffer(4, 8)
    buffer.append(b"0123456789abcdefghij")
    assert buffer.tail_text(3) == "hij"
    assert buffer.tail_text(8) == "cdefghij"
    # Past the tail only the tail is there: the bytes before it were omitted.
    assert buffer.tail_text(100) == "cdefghij"
    assert buffer.tail_text(0) == ""


def test_tail_text_reaches_into_the_head_while_nothing_is_omitted() -> None:
    buffer = HeadTailBuffer(4, 8)
    buffer.append(b"0123456789")
    assert buffer.tail_text(8) == "23456789"
    assert buffer.tail_text(100) == "0123456789"


def test_tail_text_drops_the_rest_of_a_cut_character() -> None:
    buffer = HeadTailBuffer(0, 64)
    buffer.append("x😀yz".encode())  # "😀" is 4 bytes
    assert buffer.tail_text(4) == "yz"  # cut after 2 of its bytes: 2 continuation bytes dropped
    assert buffer.tail_text(6) == "😀yz"
    assert buffer.tail_text(7) == "x😀yz"


def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        HeadTailBuffer(-1, 4)
    with pytest.raises(ValueError, match="must be >= 0"):
        HeadTailBuffer(4, -1)


def test_readers_see_consistent_state_while_a_writer_appends() -> None:
    buffer = HeadTailBuffer(16, 16)
    done = threading.Event()
    inconsistent: list[tuple[int, int, int]] = []

    def write() -> None:
        for _ in range(20_000):
            buffer.append(b"0123456789")
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set():
        total = buffer.total_bytes
        text = buffer.render(marker="")
        # Once 32 bytes went in, head + tail always hold exactly 32 (the total only grows).
        if total >= 32 and len(text) != 32:
            inconsistent.append((len(text), total, buffer.omitted_bytes))
    writer.join(timeout=30)
    assert inconsistent == []
    assert buffer.total_bytes == 200_000
