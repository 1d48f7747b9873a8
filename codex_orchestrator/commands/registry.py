"""The table of known commands: each name to the handler that says what it needs. Anything else needs ``run``."""

from __future__ import annotations

from codex_orchestrator.commands import others, readers, wrappers
from codex_orchestrator.commands.findings import EDIT, NETWORK, RUN, Handler
from codex_orchestrator.commands.git import git
from codex_orchestrator.commands.sed import sed

_READ_ONLY = (
    "ls cat head tail wc grep egrep fgrep pwd echo true false which stat diff cmp cut tr basename dirname"
    " whoami id uname cd du nl od tac realpath readlink jq sha1sum sha224sum sha256sum sha384sum sha512sum"
    " md5sum b2sum cksum"
)
_EDITORS = "touch mkdir rm rmdir cp mv ln chmod chown chgrp truncate patch tee dd shred unlink mkfifo mktemp"

HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(_READ_ONLY.split(), readers.read_only),
    **dict.fromkeys(_EDITORS.split(), others.fixed(EDIT, reason="modifies files")),
    "find": readers.find,
    "sort": readers.sort,
    "uniq": readers.uniq,
    "date": readers.date,
    "file": readers.file,
    "printf": readers.printf,
    "rg": readers.rg,
    "tree": readers.tree,
    "test": readers.test,
    "[": readers.test,
    "sed": sed,
    "set": readers.set_options,
    "git": git,
    "env": wrappers.env,
    "sudo": wrappers.sudo,
    "nice": wrappers.unwrap("n", "0123456789", ("adjustment",)),
    "timeout": wrappers.unwrap(
        "sk", "v", ("signal", "kill-after"), ("preserve-status", "foreground", "verbose")
    ),
    "time": wrappers.unwrap(
        "fo", "apvq", ("format", "output"), ("append", "portability", "verbose", "quiet")
    ),
    "command": wrappers.unwrap("", "pvV"),
    "nohup": wrappers.nohup,
    "xargs": wrappers.xargs,
    "exec": wrappers.exec_builtin,
    "eval": wrappers.eval_builtin,
    "source": wrappers.source,
    ".": wrappers.source,
    **dict.fromkeys(("sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"), wrappers.shell),
    "curl": others.curl,
    "wget": others.fixed(NETWORK, EDIT, reason="downloads into files"),
    "ssh": others.fixed(NETWORK, RUN, reason="runs commands on another host"),
    "scp": others.remote_copy,
    "sftp": others.remote_copy,
    "rsync": others.rsync,
    **dict.fromkeys(("nc", "ncat", "netcat", "telnet", "ftp"), others.netcat),
    **dict.fromkeys(
        ("ping", "ping6", "dig", "nslookup", "host", "traceroute"),
        others.fixed(NETWORK, reason="reaches the network"),
    ),
    **dict.fromkeys(
        ("apt", "apt-get", "aptitude", "dnf", "yum", "apk"),
        others.fixed(NETWORK, EDIT, RUN, reason="installs system packages"),
    ),
    **dict.fromkeys(
        ("npx", "pnpx", "uvx", "pipx", "bunx"),
        others.fixed(NETWORK, RUN, reason="downloads and runs packages"),
    ),
    "pip": others.pip,
    "pip3": others.pip,
    "uv": others.uv,
    **dict.fromkeys(("npm", "pnpm", "yarn"), others.node_pm),
    "docker": others.docker,
    "podman": others.docker,
    "perl": others.perl,
}


def handler_for(name: str) -> Handler | None:
    handler = HANDLERS.get(name)
    if handler is None and others.PYTHON.fullmatch(name):
        return others.python
    return handler
