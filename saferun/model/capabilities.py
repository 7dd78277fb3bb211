"""The Linux capability list (linux/capability.h), as data.

Names are accepted with or without the CAP_ prefix and in any case; they are stored in
docker's canonical form (upper case, with CAP_).
"""

from __future__ import annotations

# Bit number of every capability the kernel defines (up to Linux 5.9, CAP_CHECKPOINT_RESTORE).
CAPABILITY_BITS: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# Docker's default set (moby daemon/pkg/oci/caps/defaults.go); used by lint and docs.
DOCKER_DEFAULT_CAPS = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
})


def normalize_capability(name: str) -> str:
    """`net_bind_service` -> `CAP_NET_BIND_SERVICE`; unknown names raise with a suggestion."""
    upper = name.strip().upper()
    canonical = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if canonical in CAPABILITY_BITS:
        return canonical
    if upper == "ALL":
        raise ValueError("'ALL' cannot be added: list the capabilities the app needs")
    import difflib  # only for the message

    close = difflib.get_close_matches(canonical, CAPABILITY_BITS, n=1)
    hint = f" (did you mean {close[0][4:]}?)" if close else ""
    raise ValueError(f"unknown capability '{name}'{hint}")


def capability_mask(names: frozenset[str] | set[str] | tuple[str, ...]) -> int:
    """The bitmask /proc/PID/status shows in CapEff for these capabilities."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_BITS[normalize_capability(name)]
    return mask
