"""Prefect blocks: configuration only. Each block holds settings the UI can edit and translates them into
the core's own types (``SshHost.to_target() -> SshTarget``); no business logic lives here.
"""

from __future__ import annotations

from blocks.ssh_host import SshHost

__all__ = ["SshHost"]
