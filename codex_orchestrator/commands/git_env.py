"""The environment that makes a read-only git command read-only: the repository's executable config neutralised.

A repository's config (``.git/config``, which an earlier step may have written, an included file, or a
global or system file) can make plain ``git log`` or ``git ls-files`` run programs. What git(1) and
git-config(1) let config or the environment run, and how each is handled (git 2.39 to 2.47):

- overridden here (``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` rank above every config file, include and
  includeIf; ``GIT_CONFIG_PARAMETERS``, which ranks above them, is emptied): ``core.fsmonitor``,
  ``core.pager``/``pager.<cmd>`` (``GIT_PAGER`` ranks above both), hooks (``core.hooksPath``; ``git status``
  can run post-index-change), ``gpg.*program`` and ``log.showSignature``, every transport
  (``protocol.allow``: ``ext::``, ``core.sshCommand``, ``core.gitProxy``, remote helpers and a promisor's lazy
  fetch), ``credential.helper``, ``core.editor``/``sequence.editor``, ``help.autocorrect``; system and global
  files are not read at all (so neither are ``trace2.*`` targets, which only those may set);
- out of reach of the read-only subcommands: aliases (an unknown subcommand needs ``run``), ``difftool.*``,
  ``mergetool.*``, ``merge.<driver>.driver``, ``sendemail.*``, ``imap.tunnel``, ``web.browser``,
  ``man.<tool>.cmd``, ``uploadpack.packObjectsHook``, ``core.alternateRefsCommand``, ``interactive.diffFilter``;
- not neutralisable by a value: ``diff.external`` (an empty value is run as a command) and the drivers the
  attributes select by name (``filter.<name>.clean``/``process``, ``diff.<name>.textconv``/``command``). The
  git classifier (git.py) lets the subcommands that reach them (status, diff, blame, patches) run unasked
  only in the read sandbox (read_sandbox.py), which confines them to reading; elsewhere they are asked.
- environment variables that name programs (``GIT_EXTERNAL_DIFF``, ``GIT_SSH_COMMAND``, ``GIT_EXEC_PATH``,
  ...) come from the step or the orchestrator, not the repository; a command line that sets one is asked
  (assignments.py), and the read sandbox drops them (exec/no_sockets.py).
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
    ("core.sshCommand", "false"),
    ("credential.helper", ""),  # the empty value empties the list of helpers
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("help.autocorrect", "0"),  # never run a guessed command for a mistyped one
)

GIT_NEUTRAL_ENV: Mapping[str, str] = {
    "GIT_CONFIG_NOSYSTEM": "1",  # neither /etc/gitconfig ...
    "GIT_CONFIG_GLOBAL": "/dev/null",  # ... nor ~/.gitconfig, which a step run without a sandbox could write
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_PAGER": "cat",  # ranks above core.pager and pager.<cmd>
    "GIT_CONFIG_PARAMETERS": "",  # `git -c` values from the environment rank above GIT_CONFIG_KEY_n
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
