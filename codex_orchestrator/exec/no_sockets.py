"""Run a command under a seccomp filter that refuses new sockets, io_uring and the kernel keyring.

``python -I -S no_sockets.py ARGV...`` (inside the read sandbox, see ``read_sandbox.py``): installs the filter,
drops the environment variables that name programs for git, then execs ARGV. A read-only bind does not stop
``connect()`` to a Unix socket (the docker daemon's, an agent's), so a program the repository's config names
could otherwise ask a service outside the sandbox to act; without ``socket()`` it has no way to. Standard
library only: it runs with ``-I -S`` in the sandbox, where the package may not be importable.
"""

from __future__ import annotations

import os
import struct
import sys

# seccomp_data: nr at offset 0, arch at offset 4. Classic BPF opcodes (linux/filter.h, linux/seccomp.h).
_LD_ABS_W, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_EPERM = 1
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_X32_SYSCALL_BIT = 0x40000000

# (audit arch, refused syscalls: socket, add_key, request_key, keyctl, io_uring_setup/enter/register)
ARCHES: dict[str, tuple[int, tuple[int, ...]]] = {
    "x86_64": (0xC000003E, (41, 248, 249, 250, 425, 426, 427)),
    "aarch64": (0xC00000B7, (198, 217, 218, 219, 425, 426, 427)),
}

# Environment variables that make git run a program (git(1) "ENVIRONMENT VARIABLES"), or make a pager or
# ssh run one. Config values cannot unset them, so they go here.
PROGRAM_ENV = (
    "GIT_EXTERNAL_DIFF",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_PROXY_COMMAND",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_EXEC_PATH",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_TRACE2_EVENT",
    "LESSOPEN",
    "LESSCLOSE",
)


def program(machine: str) -> bytes:
    """The filter for ``machine`` (``os.uname().machine``); ``KeyError`` for an architecture not known."""
    arch, refused = ARCHES[machine]
    errno = _RET_ERRNO | _EPERM
    code: list[tuple[int, int, int, int]] = [(_LD_ABS_W, 0, 0, 4)]
    deny = 5 + len(refused)  # the final "refuse": after 4 loads/checks, one check each, and "allow"
    # A foreign architecture (32-bit calls on a 64-bit kernel, whose socketcall does everything) is refused.
    code.append((_JEQ_K, 0, deny - 2, arch))
    code.append((_LD_ABS_W, 0, 0, 0))
    code.append((_JGE_K, deny - 4, 0, _X32_SYSCALL_BIT))
    for i, nr in enumerate(refused):
        here = 4 + i
        code.append((_JEQ_K, deny - here - 1, 0, nr))
    code.append((_RET_K, 0, 0, _RET_ALLOW))
    code.append((_RET_K, 0, 0, errno))
    assert len(code) == deny + 1
    return b"".join(struct.pack("HBBI", *op) for op in code)


def install(machine: str) -> None:
    """Install the filter on this process (and so on whatever it execs); ``OSError`` when the kernel refuses."""
    import ctypes  # here: the gate imports this module for ARCHES on every start-up, and never installs

    class _SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    code = program(machine)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    prog = _SockFprog(len(code) // 8, code)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main(argv: list[str]) -> int:
    if not argv:
        print("no_sockets: no command given", file=sys.stderr)
        return 2
    try:
        install(os.uname().machine)
    except (KeyError, OSError) as exc:
        # Never run the command unfiltered: the gate only chose this sandbox because the filter holds.
        print(f"no_sockets: cannot install the syscall filter: {exc}", file=sys.stderr)
        return 126
    env = {k: v for k, v in os.environ.items() if k not in PROGRAM_ENV}
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        print(f"no_sockets: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
