/*
 * syscall_probe: try each system call that a hardened container must refuse and print
 * one line per call: `NAME errno=N` when it failed, `NAME ok` when it succeeded.
 *
 * Every call runs in a forked child, so that a call that succeeds (unshare, personality,
 * ptrace) cannot change the conditions of the next one. Arguments are chosen to be
 * harmless if the call is let through, and where possible to fail in the kernel with an
 * errno other than EPERM/ENOSYS (ENOENT, EINVAL, ESRCH, EFAULT), so the output shows
 * whether seccomp or the kernel refused it. Build: gcc -static -O2 -o syscall_probe
 * syscall_probe.c. Usage: syscall_probe [NAME...] (no names: all).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* Each probe returns the raw syscall result (>= 0 success, -1 with errno set). */
static long p_unshare_user(void) { return syscall(SYS_unshare, CLONE_NEWUSER); }
static long p_unshare_mnt(void) { return syscall(SYS_unshare, CLONE_NEWNS); }
static long p_mount(void) {
    return syscall(SYS_mount, "none", "/nonexistent-saferun-probe", "tmpfs", 0UL, NULL);
}
static long p_keyctl(void) { return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3L, 0L); }
static long p_bpf(void) { return syscall(SYS_bpf, 0x7fff /* no such command */, NULL, 0); }
static long p_ptrace(void) { return syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL); }
static long p_perf_event_open(void) {
    return syscall(SYS_perf_event_open, NULL /* EFAULT if let through */, 0, -1, -1, 0UL);
}
static long p_init_module(void) { return syscall(SYS_init_module, NULL, 0UL, ""); }
static long p_reboot(void) {
    return syscall(SYS_reboot, 0 /* wrong magic: never reboots */, 0, 0, NULL);
}
static long p_swapon(void) { return syscall(SYS_swapon, "/nonexistent-saferun-probe", 0); }
static long p_clock_settime(void) {
    struct timespec ts = {0, 0};
    return syscall(SYS_clock_settime, 0x7ff /* no such clock: EINVAL */, &ts);
}
static long p_personality(void) { return syscall(SYS_personality, READ_IMPLIES_EXEC); }
static long p_io_uring_setup(void) {
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    return syscall(SYS_io_uring_setup, 1, &params);
}
static long p_userfaultfd(void) { return syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY); }
static long p_clone3(void) { return syscall(SYS_clone3, NULL, 0UL); }
static long p_socket_alg(void) { return syscall(SYS_socket, AF_ALG, SOCK_SEQPACKET, 0); }
static long p_socket_vsock(void) { return syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0); }
static long p_getpid(void) { return syscall(SYS_getpid); }

struct probe {
    const char *name;
    long (*call)(void);
};

static const struct probe PROBES[] = {
    {"unshare_user", p_unshare_user}, {"unshare_mnt", p_unshare_mnt}, {"mount", p_mount},
    {"keyctl", p_keyctl}, {"bpf", p_bpf}, {"ptrace", p_ptrace},
    {"perf_event_open", p_perf_event_open}, {"init_module", p_init_module},
    {"reboot", p_reboot}, {"swapon", p_swapon}, {"clock_settime", p_clock_settime},
    {"personality", p_personality}, {"io_uring_setup", p_io_uring_setup},
    {"userfaultfd", p_userfaultfd}, {"clone3", p_clone3}, {"socket_alg", p_socket_alg},
    {"socket_vsock", p_socket_vsock}, {"getpid", p_getpid},
};

/* Run one probe in a child; the child's exit status carries 0 (ok) or errno. */
static void run(const struct probe *probe) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("%s fork-failed errno=%d\n", probe->name, errno);
        return;
    }
    if (pid == 0) {
        errno = 0;
        long ret = probe->call();
        _exit(ret < 0 ? (errno & 0xff) : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status))
        printf("%s signal=%d\n", probe->name, WTERMSIG(status));
    else if (WEXITSTATUS(status) == 0)
        printf("%s ok\n", probe->name);
    else
        printf("%s errno=%d\n", probe->name, WEXITSTATUS(status));
}

int main(int argc, char **argv) {
    size_t count = sizeof(PROBES) / sizeof(PROBES[0]);
    for (size_t i = 0; i < count; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], PROBES[i].name) == 0;
        if (wanted)
            run(&PROBES[i]);
    }
    return 0;
}
