"""The bubblewrap sandbox: build a ``bwrap`` command line (pure), probe once whether bwrap works here,
and recognise failures the sandbox caused (pure) so the gate can offer to retry without it.
"""

from __future__ import annotations

import functools
import os.path
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from codex_orchestrator.errors import SandboxError, SandboxUnavailable

# The probe runs one trivial sandboxed command; a healthy bwrap needs a few milliseconds.
PROBE_TIMEOUT_S = 15.0
# Evidence lines are stored in run records; a pathological line must not bloat them.
EVIDENCE_MAX_CHARS = 500
# Paths that are writable inside every sandbox: the private tmpfs /tmp and the minimal /dev bwrap builds.
_ALWAYS_WRITABLE = (PurePosixPath("/tmp"), PurePosixPath("/dev"))
_TMP = PurePosixPath("/tmp")
# Where the host's /tmp is shown (read-only) inside the sandbox's private /tmp.
_HOST_TMP = PurePosixPath("/tmp/.host-tmp")


class SandboxMode(StrEnum):
    """How much of the host a sandboxed command may change (the names follow codex's ``--sandbox``)."""

    NONE = "none"  # no sandbox: the command runs as is
    READ_ONLY = "read-only"  # nothing writable except a private tmpfs /tmp (and explicit writable paths)
    WORKSPACE_WRITE = "workspace-write"  # only the workspace, explicit writable paths and a private /tmp


class SandboxState(StrEnum):
    """How a tool call actually ran with respect to the sandbox; recorded on every call."""

    NONE = "none"  # no sandbox was asked for (mode none)
    SANDBOXED = "sandboxed"  # the call ran inside bwrap
    ESCALATED = "escalated"  # the sandbox denied the call and an approved retry ran without it
    DENIED = "denied"  # the sandbox denied the call and it was not retried without it
    UNAVAILABLE = "unavailable"  # a sandbox was asked for but bwrap cannot run here (see the probe's detail)


class DenialKind(StrEnum):
    WRITE = "write"  # a write outside the writable set was refused
    NETWORK = "network"  # a connection or name lookup failed because the network namespace is empty


@dataclass(frozen=True)
class SandboxSpec:
    """What the sandbox allows. Paths must be absolute (resolved, so error messages name the same paths)."""

    mode: SandboxMode
    workspace: Path
    network: bool = False
    writable_paths: tuple[Path, ...] = ()
    bwrap_path: str = "bwrap"
    # Host paths under /tmp to show read-only inside the private /tmp (which otherwise hides them): a
    # toolchain or checkout living in /tmp stays usable. See ``host_tmp_entries``.
    readable_paths: tuple[Path, ...] = ()
    # Existing directories shown empty and read-only inside (an agent's codex must not read the workspace's
    # exec-policy rules itself: the gate decides with them, see agents/codex.py).
    masked_paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SandboxProbe:
    """Whether bwrap can sandbox a command on this machine; ``detail`` says why not (or what was run)."""

    available: bool
    detail: str
    version: str | None


@dataclass(frozen=True)
class Denial:
    """A failure the sandbox caused; ``evidence`` is the output line that shows it."""

    kind: DenialKind
    evidence: str


CAP_DROP_ALL = ("--cap-drop", "ALL")


def wrap_argv(argv: Sequence[str], spec: SandboxSpec, cwd: Path | None = None) -> tuple[str, ...]:
    """The command line that runs ``argv`` under ``spec`` in ``cwd`` (default: the workspace). Pure."""
    if spec.mode is SandboxMode.NONE:
        return tuple(argv)
    if not argv:
        raise SandboxError("cannot sandbox an empty command line")
    chdir = _absolute(cwd if cwd is not None else spec.workspace, "cwd")
    out: list[str] = [spec.bwrap_path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # The private /tmp comes before the binds: a workspace under /tmp (pytest's tmp_path, mktemp -d) would
    # otherwise be hidden by the tmpfs mounted on top of it. bwrap creates the mount points inside the tmpfs.
    out += ["--tmpfs", "/tmp"]
    binds = _binds(spec)
    only_readable = {os.path.normpath(p) for p in spec.readable_paths} - {path for path, rw in binds if rw}
    only_readable.discard(os.path.normpath(spec.workspace))
    # Host /tmp entries are shown read-only through one bind of the host's /tmp and a symlink per entry:
    # a mount per entry costs ~0.25 ms each in bwrap (80 entries: 25 ms a call), a symlink next to nothing.
    # An entry that holds a bind target (the workspace) must stay a real directory, so it is bound instead.
    # (Plain string checks: this runs for every sandboxed call, over every entry of the host's /tmp.)
    targets = [path for path, _ in binds if path not in only_readable]
    linked = sorted(
        path
        for path in only_readable
        if path.startswith("/tmp/")
        and "/" not in path[5:]
        and not any(t == path or t.startswith(path + "/") for t in targets)
    )
    if linked:
        out += ["--ro-bind", "/tmp", str(_HOST_TMP)]
        for path in linked:
            out += ["--symlink", f"{_HOST_TMP}/{path[5:]}", path]
    for path, writable in binds:
        if path in linked:
            continue
        # -try for readable-only paths: one may vanish between listing /tmp and starting the command.
        flag = "--bind" if writable else ("--ro-bind-try" if path in only_readable else "--ro-bind")
        out += [flag, path, path]
    for masked in spec.masked_paths:
        path = _absolute(masked, "masked path")
        out += ["--tmpfs", path, "--remount-ro", path]
    if not spec.network:
        # An empty network namespace: only a loopback device on which nothing of the host listens.
        out.append("--unshare-net")
    # A pid namespace also makes bwrap the namespace's init: when the command exits, everything it left
    # running in the background is killed, so a tool call cannot leak processes.
    out += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    # No capabilities: run as root, bwrap would otherwise leave the command all of them, and it could remount
    # the read-only system writable (`mount -o remount,rw /`). A no-op for an unprivileged user.
    out += list(CAP_DROP_ALL)
    # No --new-session: it would detach the command from the PTY it runs in (no job control, no terminal
    # signals, and the exec layer's process-group signals would miss it).
    out += ["--chdir", chdir, "--", *argv]
    return tuple(out)


def probe(bwrap_path: str = "bwrap") -> SandboxProbe:
    """Run one trivial command in the same sandbox ``wrap_argv`` builds; cached per ``bwrap_path``."""
    return _probe_cached(bwrap_path)


def require_available(spec: SandboxSpec) -> None:
    """Raise ``SandboxUnavailable`` when ``spec`` asks for a sandbox that bwrap cannot provide here."""
    if spec.mode is SandboxMode.NONE:
        return
    result = probe(spec.bwrap_path)
    if not result.available:
        raise SandboxUnavailable(result.detail)


def classify_denial(exit_code: int | None, output: str, spec: SandboxSpec) -> Denial | None:
    """The sandbox denial that ``output`` shows, or None. Pure and conservative: evidence or nothing.

    Write denials: a line reporting a read-only file system (``EROFS``) unless every path it names is
    writable in the sandbox (then the host file system itself is read-only); or a line reporting a refused
    *write* ("cannot create", "cannot touch", ...: "Permission denied") that names an absolute path outside
    the writable set. A bare "Permission denied" is not enough: inside the sandbox a write to a read-only
    bind fails with EROFS before permissions are checked, so EACCES almost always means an ordinary
    permission problem that would recur without the sandbox (``cat /etc/shadow`` as a user).

    Network denials (only when the network was not granted): unreachable network, failed name resolution,
    and "Connection refused". The sandbox's network namespace has no route anywhere, so a non-loopback
    address fails with "Network is unreachable" and a refusal can only come from loopback, where none of the
    host's services are visible. A refusal is therefore counted: it is the signature of a command that needs
    a local service (a dev database, a test server). The false positive is a command whose own server is not
    up yet; it costs one escalation prompt, and the unsandboxed retry fails the same way.

    Not recognised (returns None): a host directory under /tmp outside the writable set is hidden by the
    private /tmp, so writing there fails with "No such file or directory", which is too common to attribute.
    """
    if exit_code == 0 or spec.mode is SandboxMode.NONE:
        return None
    binds = _binds(spec)
    for raw in output.splitlines():
        line = raw.strip()
        if not line:
            continue
        kind = _line_denial(line, spec, binds)
        if kind is not None:
            return Denial(kind=kind, evidence=line[:EVIDENCE_MAX_CHARS])
    return None


# --- helpers ---------------------------------------------------------------------------------------------

_READ_ONLY_FS_RE = re.compile(r"read-only file system|\bEROFS\b", re.IGNORECASE)
_PERMISSION_DENIED_RE = re.compile(r"permission denied|\bEACCES\b", re.IGNORECASE)
# Wording of write attempts in coreutils, shells, git, Python and Node messages.
_WRITE_ATTEMPT_RE = re.compile(
    r"cannot (create|touch|remove|make|move|overwrite|write|open .* for writing)|for writing|"
    r"\b(mkdir|unlink|rename|rmdir)\b",
    re.IGNORECASE,
)
# Tools that report a failed write without passing EROFS on (git's object store on a read-only bind).
_TOOL_WRITE_RE = re.compile(
    r"unable to create temporary object directory|insufficient permission for adding an object|"
    r"unable to create temporary file: read-only",
    re.IGNORECASE,
)
_NETWORK_RE = re.compile(
    r"network is unreachable|\bENETUNREACH\b|temporary failure in name resolution|\bEAI_AGAIN\b|"
    r"could not resolve host|name or service not known|no address associated with hostname|"
    r"name does not resolve|getaddrinfo ENOTFOUND|connection refused|\bECONNREFUSED\b",
    re.IGNORECASE,
)
# Absolute paths in messages: quoted (may hold spaces) or a bare token after whitespace or punctuation.
# A URL's "//" is not a path: the first slash follows ':' and the second follows '/'.
_PATH_RE = re.compile(
    r"""'(/[^']*)'|"(/[^"]*)"|\u2018(/[^\u2019]*)\u2019|(?:^|(?<=[\s(\[=`]))(/[^\s'"`\u2019:,;)\]]*)"""
)


def _line_denial(line: str, spec: SandboxSpec, binds: list[tuple[str, bool]]) -> DenialKind | None:
    if _TOOL_WRITE_RE.search(line):
        return DenialKind.WRITE
    if _READ_ONLY_FS_RE.search(line):
        paths = _paths_in(line)
        if not paths or any(not _is_writable(p, binds) for p in paths):
            return DenialKind.WRITE
    if (
        _PERMISSION_DENIED_RE.search(line)
        and _WRITE_ATTEMPT_RE.search(line)
        and any(not _is_writable(p, binds) for p in _paths_in(line))
    ):
        return DenialKind.WRITE
    if not spec.network and _NETWORK_RE.search(line):
        return DenialKind.NETWORK
    return None


def _paths_in(line: str) -> list[PurePosixPath]:
    found = ("".join(groups) for groups in _PATH_RE.findall(line))
    return [PurePosixPath(os.path.normpath(p)) for p in found if p]


def _within(path: PurePosixPath, roots: Iterable[PurePosixPath]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _binds(spec: SandboxSpec) -> list[tuple[str, bool]]:
    """(host path, writable) to bind over the read-only root, parents first so the most specific bind wins.

    The workspace is bound even in read-only mode: the root's read-only view already shows it, except under
    /tmp, where the private tmpfs hides it. An explicit writable path wins over the read-only workspace, and
    both win over a readable path.
    """
    writable: dict[str, bool] = {}
    for extra in spec.readable_paths:
        writable[_absolute(extra, "readable_paths")] = False
    writable[_absolute(spec.workspace, "workspace")] = spec.mode is SandboxMode.WORKSPACE_WRITE
    for extra in spec.writable_paths:
        writable[_absolute(extra, "writable_paths")] = True
    return sorted(writable.items(), key=lambda item: (item[0].rstrip("/").count("/"), item[0]))


def _is_writable(path: PurePosixPath, binds: list[tuple[str, bool]]) -> bool:
    """Writable inside the sandbox: the most specific bind decides; else only the private /tmp and /dev."""
    covering = [(bound, writable) for bound, writable in binds if path.is_relative_to(bound)]
    if covering:
        return max(covering, key=lambda item: len(PurePosixPath(item[0]).parts))[1]
    return _within(path, _ALWAYS_WRITABLE)


# More entries than this in the host's /tmp are not all shown (bwrap's command line stays bounded).
MAX_TMP_ENTRIES = 256


# A listing of /tmp is reused while /tmp's mtime stays what it was, once that mtime is this old: a change
# within the file system's timestamp granularity of the listing could otherwise go unseen.
_TMP_LISTING_SETTLED_S = 1.0
_tmp_listing: tuple[int, int, tuple[Path, ...]] | None = None  # (mtime_ns, limit, entries)


def host_tmp_entries(limit: int = MAX_TMP_ENTRIES) -> tuple[Path, ...]:
    """The top-level entries of the host's /tmp, for ``SandboxSpec.readable_paths``.

    The sandbox's /tmp is a private tmpfs, so writes never reach the host; showing the host's entries
    read-only on top keeps what the read-only root shows everywhere else visible under /tmp too (a virtualenv
    or a checkout in /tmp). Sockets and other special files are skipped. Every sandboxed call asks, so the
    listing is kept while /tmp's mtime (which any entry added, removed or renamed changes) stays put.
    """
    global _tmp_listing
    try:
        mtime_ns = os.stat("/tmp").st_mtime_ns
    except OSError:
        return ()
    cached = _tmp_listing
    if cached is not None and cached[:2] == (mtime_ns, limit):
        return cached[2]
    entries = _list_tmp(limit)
    if time.time_ns() - mtime_ns > _TMP_LISTING_SETTLED_S * 1e9:
        _tmp_listing = (mtime_ns, limit, entries)
    return entries


def _list_tmp(limit: int) -> tuple[Path, ...]:
    try:
        entries = sorted(os.scandir("/tmp"), key=lambda e: e.name)
    except OSError:
        return ()
    shown: list[Path] = []
    for entry in entries:
        if len(shown) >= limit:
            break
        try:
            if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                shown.append(Path(entry.path))
        except OSError:
            continue
    return tuple(shown)


def _absolute(path: Path, what: str) -> str:
    if not path.is_absolute():
        raise SandboxError(f"sandbox {what} must be an absolute path, got {str(path)!r}")
    return os.path.normpath(path)


@functools.cache
def _probe_cached(bwrap_path: str) -> SandboxProbe:
    resolved = shutil.which(bwrap_path)
    if resolved is None:
        return SandboxProbe(
            False, f"{bwrap_path!r} not found on PATH; install bubblewrap (apt-get install bubblewrap)", None
        )
    # `--version` runs while the probe does: start-up pays for one process, not two in a row.
    asking = _start_version(resolved)
    root = Path("/")
    argv = wrap_argv(["true"], SandboxSpec(SandboxMode.READ_ONLY, root, bwrap_path=resolved), cwd=root)
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return SandboxProbe(
            False,
            f"{resolved} did not finish a trivial sandboxed command in {PROBE_TIMEOUT_S}s",
            _version_of(asking),
        )
    except OSError as exc:
        return SandboxProbe(False, f"cannot run {resolved}: {exc}", _version_of(asking))
    version = _version_of(asking)
    if done.returncode != 0:
        stderr = done.stderr.strip() or "(no stderr)"
        detail = (
            f"{resolved} cannot create a sandbox (exit {done.returncode}): {stderr}; user namespaces may be "
            "disabled (check sysctl kernel.unprivileged_userns_clone and user.max_user_namespaces) or the "
            "container may forbid mounts; use sandbox mode 'none' only if the command is trusted"
        )
        return SandboxProbe(False, detail, version)
    return SandboxProbe(True, f"{resolved} {version or '(unknown version)'} sandboxes commands", version)


def _start_version(resolved: str) -> subprocess.Popen[str] | None:
    """Start ``bwrap --version`` (it prints "bubblewrap 0.8.0"); ``_version_of`` collects it."""
    try:
        return subprocess.Popen(
            [resolved, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError:
        return None


def _version_of(asking: subprocess.Popen[str] | None) -> str | None:
    """The version ``_start_version`` asked for; None when bwrap printed nothing usable."""
    if asking is None:
        return None
    try:
        stdout, _ = asking.communicate(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        asking.kill()
        asking.communicate()
        return None
    words = stdout.split()
    return words[-1] if asking.returncode == 0 and words else None
