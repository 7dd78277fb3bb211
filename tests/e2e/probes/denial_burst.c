/*
 * denial_burst: make N refused system calls as fast as it can and print how long it took.
 *
 * Under a profile with [seccomp] report = "kill" each refused call kills its whole process
 * (SCMP_ACT_KILL_PROCESS), so every call needs a process of its own: N calls, N audit
 * records, N processes killed by SIGSYS. A fork per call costs a copy of the page tables;
 * here each call runs in a clone(CLONE_VM | CLONE_VFORK) child that shares the worker's
 * memory (no copy; the worker sleeps until the child is dead) and W workers, one or more
 * per core, make their share of the N calls side by side.
 *
 * Usage: denial_burst N [WORKERS [vm|fork]]  (defaults: 10000, the online CPUs, vm)
 * Prints: calls=N killed=K seconds=S workers=W mode=M
 * Build: gcc -static -O2 -o denial_burst denial_burst.c.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_STACK (64 * 1024)

static int refused_call(void *unused) {
    (void)unused;
    syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL); /* killed here */
    _exit(0);
}

/* One call in a child of its own; returns 1 when the child died of SIGSYS. */
static int one_call(int share_memory, char *stack_top) {
    pid_t pid;
    if (share_memory) {
        pid = clone(refused_call, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    } else {
        pid = fork();
        if (pid == 0)
            refused_call(NULL);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        perror("clone/wait");
        return -1;
    }
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

static long worker(long calls, int share_memory) {
    char *stack = malloc(CHILD_STACK);
    if (stack == NULL)
        return -1;
    long killed = 0;
    for (long i = 0; i < calls; i++) {
        int result = one_call(share_memory, stack + CHILD_STACK);
        if (result < 0)
            return -1;
        killed += result;
    }
    return killed;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    long workers = argc > 2 ? atol(argv[2]) : sysconf(_SC_NPROCESSORS_ONLN);
    int share_memory = !(argc > 3 && strcmp(argv[3], "fork") == 0);
    if (n < 0 || workers < 1 || workers > 256) {
        fprintf(stderr, "usage: denial_burst N [WORKERS [vm|fork]]\n");
        return 2;
    }
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none); /* SIGSYS dumps core by default: not 10,000 times */
    /* each worker's count of killed children, readable by the parent */
    long *killed = mmap(NULL, workers * sizeof(long), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int go[2];
    if (killed == MAP_FAILED || pipe(go) < 0) {
        perror("mmap/pipe");
        return 1;
    }
    for (long w = 0; w < workers; w++) {
        long share = n / workers + (w < n % workers);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            char byte;
            close(go[1]);
            if (read(go[0], &byte, 1) < 0) /* all start together: 0 when the parent closes */
                _exit(1);
            killed[w] = worker(share, share_memory);
            _exit(0);
        }
    }
    close(go[0]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    close(go[1]);
    int failed = 0;
    for (long w = 0; w < workers; w++) {
        int status = 0;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long total = 0;
    for (long w = 0; w < workers; w++)
        total += killed[w] < 0 ? (failed = 1, 0) : killed[w];
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("calls=%ld killed=%ld seconds=%.3f workers=%ld mode=%s\n", n, total, seconds,
           workers, share_memory ? "vm" : "fork");
    return failed;
}
