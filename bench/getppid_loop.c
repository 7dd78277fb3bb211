/* getppid_loop [N]: N raw getppid() system calls (glibc does not cache getppid); prints
 * the nanoseconds per call measured with CLOCK_MONOTONIC inside the container, so
 * container start-up is not part of the figure. Build: gcc -static -O2. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("calls=%ld ns_per_call=%.2f\n", n, ns / n);
    return 0;
}
