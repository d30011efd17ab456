"""A seccomp filter for the playground's worker: the view may not start processes, signal
any process but its own, trace or read other processes, change its limits, or change its
mounts and namespaces. Everything else is allowed; the sandbox (bubblewrap: what is
mounted, no network) and the resource limits do the rest (docs/playground.md).

Plain Python and ctypes, no dependency: the filter is a short classic BPF program built
here, installed with ``seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)`` so every thread of the
process has it, after ``PR_SET_NO_NEW_PRIVS``. It cannot be removed; a filter the code
adds later can only forbid more. Linux on x86-64 and arm64 only (arm64 untested here).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass

# seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
_NR, _ARCH, _ARG0_LOW = 0, 4, 16

# Classic BPF opcodes.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_JGE_K = 0x35
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1


@dataclass(frozen=True)
class Arch:
    audit: int  # AUDIT_ARCH_* of seccomp_data.arch
    seccomp: int  # the seccomp(2) system call's number
    numbers: dict[str, int]


# The system calls the filter looks at, by architecture. Calls refused outright:
DENIED = (
    "fork", "vfork", "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "ptrace",
    "process_vm_readv", "process_vm_writev", "setrlimit", "prlimit64", "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "kexec_load", "kexec_file_load", "reboot",
    "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr",
)  # fmt: skip
# Signals: allowed only to this process (the first argument is its pid).
OWN_PID_ONLY = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")

X86_64 = Arch(
    audit=0xC000003E,
    seccomp=317,
    numbers={
        "clone": 56, "fork": 57, "vfork": 58, "kill": 62, "ptrace": 101, "setrlimit": 160,
        "pivot_root": 155, "chroot": 161, "mount": 165, "umount2": 166, "reboot": 169,
        "init_module": 175, "delete_module": 176, "tkill": 200, "tgkill": 234,
        "kexec_load": 246, "add_key": 248, "request_key": 249, "keyctl": 250,
        "unshare": 272, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "perf_event_open": 298, "prlimit64": 302, "setns": 308, "process_vm_readv": 310,
        "process_vm_writev": 311, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
        "pidfd_send_signal": 424, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "clone3": 435,
        "pidfd_getfd": 438, "mount_setattr": 442,
    },
)  # fmt: skip
# The generic table: arm64 has no fork or vfork (glibc forks with clone).
AARCH64 = Arch(
    audit=0xC00000B7,
    seccomp=277,
    numbers={
        "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51, "unshare": 97,
        "kexec_load": 104, "init_module": 105, "delete_module": 106, "ptrace": 117,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "reboot": 142,
        "setrlimit": 164, "add_key": 217, "request_key": 218, "keyctl": 219, "clone": 220,
        "rt_tgsigqueueinfo": 240, "perf_event_open": 241, "prlimit64": 261, "setns": 268,
        "process_vm_readv": 270, "process_vm_writev": 271, "finit_module": 273, "bpf": 280,
        "kexec_file_load": 294, "pidfd_send_signal": 424, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442,
    },
)  # fmt: skip
ARCHES = {"x86_64": X86_64, "aarch64": AARCH64}


class SeccompUnavailable(Exception):
    """The filter cannot be installed here; the text says why."""


def current_arch() -> Arch:
    machine = platform.machine()
    if machine not in ARCHES:
        raise SeccompUnavailable(f"no seccomp filter for the {machine} architecture")
    return ARCHES[machine]


def build_filter(arch: Arch, pid: int) -> bytes:
    """The BPF program, as the bytes of its struct sock_filter array."""
    program: list[tuple[int, int, int, int]] = []
    deny = _RET_ERRNO | errno.EPERM

    def jump_if(value: int, then: list[tuple[int, int, int, int]]) -> None:
        # if nr == value: then (a block that ends by returning) else: go on.
        program.append((_JEQ_K, 0, len(then), value))
        program.extend(then)

    program.append((_LD_W_ABS, 0, 0, _ARCH))
    program.append((_JEQ_K, 1, 0, arch.audit))
    program.append((_RET_K, 0, 0, _RET_KILL_PROCESS))
    program.append((_LD_W_ABS, 0, 0, _NR))
    if arch is X86_64:
        # The x32 ABI's numbers are other calls: refuse them all.
        program.append((_JGE_K, 0, 1, _X32_SYSCALL_BIT))
        program.append((_RET_K, 0, 0, _RET_KILL_PROCESS))
    for name in DENIED:
        if name in arch.numbers:
            jump_if(arch.numbers[name], [(_RET_K, 0, 0, deny)])
    # clone3 passes its flags in memory, out of the filter's sight: "not implemented", so
    # glibc falls back to clone, whose flags it can see.
    jump_if(arch.numbers["clone3"], [(_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)])
    # clone: a new thread of this process is fine, a new process is not.
    jump_if(
        arch.numbers["clone"],
        [
            (_LD_W_ABS, 0, 0, _ARG0_LOW),
            (_JSET_K, 0, 1, _CLONE_THREAD),
            (_RET_K, 0, 0, _RET_ALLOW),
            (_RET_K, 0, 0, deny),
        ],
    )
    for name in OWN_PID_ONLY:
        jump_if(
            arch.numbers[name],
            [
                (_LD_W_ABS, 0, 0, _ARG0_LOW),
                (_JEQ_K, 0, 1, pid & 0xFFFFFFFF),
                (_RET_K, 0, 0, _RET_ALLOW),
                (_RET_K, 0, 0, deny),
            ],
        )
    program.append((_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Install the filter on every thread of this process, for good."""
    arch = current_arch()
    program = build_filter(arch, os.getpid())
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SeccompUnavailable(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    result = libc.syscall(
        arch.seccomp,
        _SECCOMP_SET_MODE_FILTER,
        _SECCOMP_FILTER_FLAG_TSYNC,
        ctypes.byref(fprog),
    )
    if result != 0:
        raise SeccompUnavailable(f"seccomp(): {os.strerror(ctypes.get_errno())}")
