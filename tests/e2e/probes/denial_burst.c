/*
 * denial_burst: make N refused system calls as fast as it can and print how long it took.
 *
 * Under a profile with [seccomp] report = "kill" each refused call kills its caller, so
 * every call runs in a forked child (the parent waits and forks the next): N calls, N
 * audit records, N processes killed by SIGSYS. Usage: denial_burst N [SYSCALL_NR]
 * (default: ptrace). Build: gcc -static -O2 -o denial_burst denial_burst.c.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    long nr = argc > 2 ? atol(argv[2]) : SYS_ptrace;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none); /* SIGSYS dumps core by default: not 10,000 times */
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long killed = 0;
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            syscall(nr, PTRACE_TRACEME, 0, NULL, NULL);
            _exit(0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0) {
            perror("fork/wait");
            return 1;
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
            killed++;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("calls=%ld killed=%ld seconds=%.3f\n", n, killed, seconds);
    return 0;
}
