"""The environment that makes a read-only git command read-only: the repository's executable config neutralised.

A repository's config (``.git/config``, which an earlier step may have written, or a global or system file)
can make plain ``git log`` or ``git ls-files`` run programs: ``core.fsmonitor``, ``core.pager`` and
``pager.<cmd>``, ``gpg.program`` (``log --show-signature``, ``%G?``), a promisor remote's transport. Variables
given as ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` rank above every config file, so they win. Drivers that the
repository's attributes select by name (``filter.<name>.clean``, ``diff.<name>.textconv``/``command``) and
``diff.external`` cannot be neutralised this way: the git classifier (git.py) keeps the subcommands that reach
them (status, diff, blame, patches without ``--no-textconv``) out of the read-only set instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from codex_orchestrator.policy import ApprovalSource, CallFacts

# (key, value): each one turns a program-running setting into a harmless one. `git help config` documents them.
NEUTRAL_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),  # a hook program run to list changed files
    ("core.pager", "cat"),
    ("core.hooksPath", "/dev/null"),  # no hook runs from a read-only command; this makes sure
    ("core.attributesFile", "/dev/null"),  # the global attributes file could select a driver too
    ("gpg.program", "false"),  # run to verify signatures: log --show-signature, --format=%G?
    ("gpg.openpgp.program", "false"),
    ("gpg.x509.program", "false"),
    ("gpg.ssh.program", "false"),
    ("log.showSignature", "false"),
    ("protocol.allow", "never"),  # no transport at all: a lazy fetch from a promisor remote could run one
)

GIT_NEUTRAL_ENV: Mapping[str, str] = {
    "GIT_CONFIG_NOSYSTEM": "1",  # neither /etc/gitconfig ...
    "GIT_CONFIG_GLOBAL": "/dev/null",  # ... nor ~/.gitconfig, which a step run without a sandbox could write
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_PAGER": "cat",  # ranks above core.pager and pager.<cmd>
    "GIT_CONFIG_COUNT": str(len(NEUTRAL_CONFIG)),
    **{f"GIT_CONFIG_KEY_{i}": key for i, (key, _) in enumerate(NEUTRAL_CONFIG)},
    **{f"GIT_CONFIG_VALUE_{i}": value for i, (_, value) in enumerate(NEUTRAL_CONFIG)},
}


def spawn_env(env: Mapping[str, str], facts: CallFacts, approval_source: str | None) -> dict[str, str]:
    """The environment a shell call is spawned with: the step's own, plus the overrides its read-only
    classification relies on when it runs unasked because it was read-only. A call a human (or a profile
    that grants more) let run keeps the repository's config as it is."""
    if facts.read_only_safe and approval_source == ApprovalSource.NOT_REQUIRED.value:
        return {**env, **facts.env}
    return dict(env)
