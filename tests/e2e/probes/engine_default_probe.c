/* Calls where saferun's default seccomp profile and an engine's own default may differ
 * (docs/seccomp.md, "Allowed here, refused by Docker ...'s default"). Each is made with
 * arguments the kernel rejects with its own errno (EBADF, EFAULT, ENOENT, EINVAL) when
 * seccomp lets it through, so EPERM means the filter refused it. Prints "name ok" or
 * "name errno=N" per call. Raw numbers: x86_64 only, and the libc may predate them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AT_FDCWD_ -100

struct call {
    const char *name;
    long number;
    long args[4];
};

static const struct call CALLS[] = {
    {"pkey_alloc", 330, {0, 0, 0, 0}},
    {"pkey_free", 331, {-1, 0, 0, 0}},
    {"pkey_mprotect", 329, {0, 0, 0, -1}},
    {"name_to_handle_at", 303, {AT_FDCWD_, 0, 0, 0}},
    {"cachestat", 451, {-1, 0, 0, 0}},
    {"fchmodat2", 452, {AT_FDCWD_, 0, 0, 0}},
    {"io_uring_setup", 425, {0, 0, 0, 0}},
    {"getpid", 39, {0, 0, 0, 0}},
};

int main(void) {
    for (size_t i = 0; i < sizeof CALLS / sizeof CALLS[0]; i++) {
        const struct call *c = &CALLS[i];
        errno = 0;
        long r = syscall(c->number, c->args[0], c->args[1], c->args[2], c->args[3]);
        if (r >= 0 || errno == 0)
            printf("%s ok\n", c->name);
        else
            printf("%s errno=%d\n", c->name, errno);
    }
    return 0;
}
