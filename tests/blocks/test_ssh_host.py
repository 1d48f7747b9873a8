"""The ``Codex SSH Host`` block: field translation into ``SshTarget`` and secret hygiene."""

from __future__ import annotations

import pytest

from blocks import SshHost
from codex_orchestrator.exec.ssh import SshTarget

KEY_TEXT = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material-1234\n-----END OPENSSH PRIVATE KEY-----\n"
)


def full_block() -> SshHost:
    return SshHost(
        hostname="build-01.example.internal",
        port=2222,
        username="ci",
        private_key=KEY_TEXT,
        private_key_path="~/.ssh/id_ed25519",
        known_hosts_path="/etc/codex/known_hosts",
        trust_on_first_use=True,
        sandbox_command=["bwrap", "--die-with-parent"],
        connect_timeout_s=3.5,
    )


def test_to_target_translates_every_field() -> None:
    assert full_block().to_target() == SshTarget(
        host="build-01.example.internal",
        port=2222,
        user="ci",
        key_file="~/.ssh/id_ed25519",
        key_data=KEY_TEXT,
        known_hosts="/etc/codex/known_hosts",
        trust_on_first_use=True,
        connect_timeout_s=3.5,
        sandbox_command=("bwrap", "--die-with-parent"),
    )


def test_defaults_match_the_target_defaults() -> None:
    block = SshHost(hostname="host")

    assert block.to_target() == SshTarget(host="host")
    assert block.trust_on_first_use is False
    assert block.sandbox_command == []


def test_secret_never_appears_in_repr_or_json() -> None:
    block = full_block()

    for rendering in (repr(block), str(block), block.model_dump_json(), repr(block.to_target())):
        assert "secret-key-material" not in rendering


def test_port_is_validated() -> None:
    with pytest.raises(ValueError, match="port"):
        SshHost(hostname="host", port=70000)


def test_block_type_is_named_for_the_ui() -> None:
    assert SshHost.get_block_type_name() == "Codex SSH Host"
    assert SshHost.get_description()
    schema = SshHost.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())


@pytest.mark.prefect
def test_saved_block_loads_with_its_secret(prefect_server: str) -> None:
    full_block().save("codex-test-host", overwrite=True)

    loaded = SshHost.load("codex-test-host")

    assert isinstance(loaded, SshHost)
    assert loaded.to_target() == full_block().to_target()
