"""A transcript buffer that keeps the start and the end of a byte stream and counts what it dropped between.

Memory stays bounded by ``head_bytes + 2 * tail_bytes`` however long the stream runs.
"""

from __future__ import annotations

import threading

DEFAULT_MARKER = "\n… {omitted} bytes omitted …\n"
# A UTF-8 character is at most 4 bytes, so a cut lands at most 3 continuation bytes into one.
_MAX_UTF8_CONTINUATION_BYTES = 3


class HeadTailBuffer:
    """Keeps the first ``head_bytes`` and the last ``tail_bytes`` of everything appended.

    Bytes kept in the head are never repeated in the tail, so ``head + omitted + tail == total``.
    Appends are O(len(data)) amortised: the tail is compacted only once it holds twice its budget.
    Thread-safe: one thread may append while others read.
    """

    def __init__(self, head_bytes: int, tail_bytes: int) -> None:
        if head_bytes < 0 or tail_bytes < 0:
            raise ValueError(f"head_bytes and tail_bytes must be >= 0, got {head_bytes}, {tail_bytes}")
        self._head_limit = head_bytes
        self._tail_limit = tail_bytes
        self._head = bytearray()
        # Holds at most 2 * tail_bytes; only its last tail_bytes are the tail.
        self._tail = bytearray()
        self._total = 0
        self._lock = threading.Lock()

    def append(self, data: bytes) -> None:
        """Add the next piece of the stream."""
        if not data:
            return
        view = memoryview(data)
        with self._lock:
            self._total += len(view)
            room = self._head_limit - len(self._head)
            if room > 0:
                self._head += view[:room]
                view = view[room:]
            if not view or self._tail_limit == 0:
                return
            if len(view) >= self._tail_limit:
                # A big piece replaces the whole tail; copy only the part that survives.
                self._tail[:] = view[len(view) - self._tail_limit :]
                return
            self._tail += view
            if len(self._tail) > 2 * self._tail_limit:
                del self._tail[: len(self._tail) - self._tail_limit]

    @property
    def head(self) -> bytes:
        """The first ``head_bytes`` of the stream (fewer while the stream is shorter)."""
        with self._lock:
            return bytes(self._head)

    @property
    def tail(self) -> bytes:
        """The last ``tail_bytes`` of the stream that are not already in ``head``."""
        with self._lock:
            return self._tail_locked()

    @property
    def total_bytes(self) -> int:
        """Every byte ever appended."""
        with self._lock:
            return self._total

    @property
    def omitted_bytes(self) -> int:
        """Bytes dropped between head and tail."""
        with self._lock:
            return self._omitted_locked()

    def render(self, marker: str = DEFAULT_MARKER) -> str:
        """Head, then ``marker`` (``{omitted}`` is replaced by the count) if bytes were dropped, then tail.

        Decoded as UTF-8 with ``errors="replace"``; a character cut by the omission shows as U+FFFD.
        """
        with self._lock:
            head, tail, omitted = bytes(self._head), self._tail_locked(), self._omitted_locked()
        if not omitted:
            return (head + tail).decode("utf-8", errors="replace")
        return (
            head.decode("utf-8", errors="replace")
            + marker.format(omitted=omitted)
            + tail.decode("utf-8", errors="replace")
        )

    def tail_text(self, max_bytes: int) -> str:
        """The last ``max_bytes`` of the stream as text (from the head too while nothing was omitted).

        Leading bytes of a character cut by the limit are dropped instead of showing as U+FFFD.
        """
        if max_bytes <= 0:
            return ""
        with self._lock:
            tail = self._tail_locked()
            kept = bytes(self._head) + tail if not self._omitted_locked() else tail
            total = self._total
        cut = kept[-max_bytes:]
        start = 0
        if len(cut) < total:  # the text starts mid-stream, possibly mid-character
            while start < min(len(cut), _MAX_UTF8_CONTINUATION_BYTES) and _is_continuation(cut[start]):
                start += 1
        return cut[start:].decode("utf-8", errors="replace")

    def __len__(self) -> int:
        """Bytes currently kept (head plus tail)."""
        with self._lock:
            return len(self._head) + len(self._tail_locked())

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"HeadTailBuffer(total_bytes={self._total}, omitted_bytes={self._omitted_locked()}, "
                f"head_bytes={self._head_limit}, tail_bytes={self._tail_limit})"
            )

    def _tail_locked(self) -> bytes:
        return bytes(self._tail[-self._tail_limit :]) if self._tail_limit else b""

    def _omitted_locked(self) -> int:
        kept_tail = min(len(self._tail), self._tail_limit)
        return self._total - len(self._head) - kept_tail


def _is_continuation(byte: int) -> bool:
    return byte & 0b1100_0000 == 0b1000_0000
