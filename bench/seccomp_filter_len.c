/* seccomp_filter_len PID: print the number of BPF instructions of each seccomp filter
 * attached to PID (as the kernel holds them, after runc built and patched them).
 * Needs CAP_SYS_ADMIN and ptrace access to PID; run it in a helper container that shares
 * the target's PID namespace, never on the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    pid_t pid = (pid_t)atoi(argv[1]);
    if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0) {
        printf("attach errno=%d\n", errno);
        return 1;
    }
    waitpid(pid, NULL, 0);
    for (long index = 0;; index++) {
        long len = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)index, NULL);
        if (len < 0) {
            if (index == 0)
                printf("filters=0 errno=%d\n", errno);
            break;
        }
        printf("filter=%ld instructions=%ld\n", index, len);
    }
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
    return 0;
}
