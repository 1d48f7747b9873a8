"""The ``Codex SSH Host`` Prefect block: where and how to reach a remote exec host (configuration only)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from codex_orchestrator.exec.ssh import DEFAULT_SSH_PORT, SshTarget


class SshHost(Block):
    """An SSH host that tool calls may run on; ``to_target()`` turns it into the core's ``SshTarget``."""

    _block_type_name = "Codex SSH Host"
    _description = (
        "An SSH host where codex-orchestrator runs tool calls in a remote PTY. Unknown host keys are "
        "refused unless trust-on-first-use is enabled; a changed host key is always refused."
    )

    hostname: str = Field(description="Host name or IP address of the SSH server.")
    port: int = Field(default=DEFAULT_SSH_PORT, ge=1, le=65535, description="TCP port of the SSH server.")
    username: str | None = Field(
        default=None, description="Login user; empty means the user the worker runs as."
    )
    private_key: SecretStr | None = Field(
        default=None,
        description="Private key text (OpenSSH or PEM, unencrypted); stored as a secret.",
    )
    private_key_path: str | None = Field(
        default=None, description="Path to a private key file on the worker, e.g. ~/.ssh/id_ed25519."
    )
    known_hosts_path: str | None = Field(
        default=None,
        description="known_hosts file used to verify the host key; empty means ~/.ssh/known_hosts.",
    )
    trust_on_first_use: bool = Field(
        default=False,
        description="Accept an unknown host key once and record it in known_hosts. A changed key is still "
        "refused.",
    )
    sandbox_command: list[str] = Field(
        default_factory=list,
        description="Sandbox wrapper installed on the host, prepended to each command (e.g. a bwrap "
        "invocation). Empty means commands run unsandboxed on that host.",
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the TCP connection, SSH handshake and login."
    )

    def to_target(self) -> SshTarget:
        """The ``SshTarget`` these settings describe (the only place the private key is revealed)."""
        return SshTarget(
            host=self.hostname,
            port=self.port,
            user=self.username or None,
            key_file=self.private_key_path or None,
            key_data=self.private_key.get_secret_value() if self.private_key else None,
            known_hosts=self.known_hosts_path or None,
            trust_on_first_use=self.trust_on_first_use,
            connect_timeout_s=self.connect_timeout_s,
            sandbox_command=tuple(self.sandbox_command),
        )
