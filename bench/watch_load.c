/* watch_load MODE N: the watched app's syscall-heavy work, timed from inside the container.
 *
 *   getppid: N raw getppid() calls (allowed: no audit record; the pure system-call cost)
 *   fork:    N fork() + _exit + waitpid (every fork and exit is a process-connector event
 *            that watch reads, and its cgroup file is read for each)
 *
 * Prints `mode=M n=N wall_ns=W cpu_ns=C` per operation: wall from CLOCK_MONOTONIC, CPU from
 * getrusage (self + children, user + system). CPU time is what the app itself spent, so a
 * neighbour taking the core away (other work on a shared host) shows in wall, much less
 * in CPU. Build: gcc -static -O2. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_ns(void) {
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    double us = 0;
    struct timeval all[] = {self.ru_utime, self.ru_stime, children.ru_utime, children.ru_stime};
    for (int i = 0; i < 4; i++)
        us += all[i].tv_sec * 1e6 + all[i].tv_usec;
    return us * 1e3;
}

static double wall_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1e9 + now.tv_nsec;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "getppid";
    long n = argc > 2 ? atol(argv[2]) : 1000000L;
    int forking = strcmp(mode, "fork") == 0;
    if (n <= 0 || (!forking && strcmp(mode, "getppid") != 0)) {
        fprintf(stderr, "usage: watch_load getppid|fork N\n");
        return 2;
    }
    double wall0 = wall_ns(), cpu0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        if (!forking) {
            syscall(SYS_getppid);
            continue;
        }
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0 || waitpid(pid, NULL, 0) < 0) {
            perror("fork/wait");
            return 1;
        }
    }
    double wall = wall_ns() - wall0, cpu = cpu_ns() - cpu0;
    printf("mode=%s n=%ld wall_ns=%.2f cpu_ns=%.2f\n", mode, n, wall / n, cpu / n);
    return 0;
}
