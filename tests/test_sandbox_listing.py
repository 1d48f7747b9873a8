"""The host /tmp listing every sandboxed call asks for is reused only while /tmp has not changed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from codex_orchestrator import sandbox
from codex_orchestrator.sandbox import host_tmp_entries


def test_a_new_or_removed_tmp_entry_is_seen_by_the_next_listing() -> None:
    first = host_tmp_entries()
    made = Path(tempfile.mkdtemp(prefix="co-listing-", dir="/tmp"))
    try:
        assert made in host_tmp_entries() and made not in first
        # Once /tmp's mtime has settled the listing is kept; it is the same objects, not a rescan.
        settled = os.stat("/tmp").st_mtime_ns - 2 * 10**9
        os.utime("/tmp", ns=(settled, settled))
        kept = host_tmp_entries()
        assert host_tmp_entries() is kept and sandbox._tmp_listing is not None
    finally:
        shutil.rmtree(made)
    assert made not in host_tmp_entries()
