/*
 * escape_probe: the escape battery. Tries, one after another, the techniques an attacker
 * inside a container uses to reach the host or to take more than the container was given,
 * and prints exactly one line per attempt:
 *
 *     NAME: blocked (detail)      the attempt failed; detail says what refused it
 *     NAME: ALLOWED (detail)      the attempt succeeded (or passed the permission check)
 *
 * RUN IT ONLY INSIDE A CONTAINER. As root on a host, several attempts succeed for real
 * (mount over a directory, sethostname, clock_settime). Even then every attempt is chosen
 * to be harmless if it is let through: clock_settime sets the current time, sethostname
 * and /proc/sys/kernel/hostname write the current name back, reboot asks for
 * LINUX_REBOOT_CMD_CAD_OFF, core_pattern and /proc/sysrq-trigger are only opened for
 * writing (nothing is ever written), the bombs are bounded by a count and a timeout, and
 * anything created is removed again.
 *
 * Each attempt runs in its own forked child (so that e.g. a successful unshare cannot
 * change the conditions of the next attempt) and sends its line to the parent through a
 * pipe. A child that dies without a line is reported by the parent: killed by a signal ->
 * blocked (the signal is named); timed out -> ALLOWED (fail-safe: an attempt we could not
 * judge must never count as blocked).
 *
 * Build: gcc -static -O2 -Wall -o escape_probe escape_probe.c
 * Usage: escape_probe [--port N] [NAME...]   (--port: a TCP port the HOST listens on at
 * 127.0.0.1, used by the host-network attempts; no names: every attempt)
 * Needs /bin/suid_helper (setuid root, mode 4755) and /escape/other-user (a file owned by
 * uid 1234) in the image; see tests/escape/Dockerfile.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORK_BOUND 1000          /* > saferun's default pids limit (256) */
#define MEMORY_BOUND_MIB 1024    /* > saferun's default memory limit (512m) */
#define FD_BOUND 16384           /* > saferun's default nofile hard limit (4096) */
#define ATTEMPT_TIMEOUT_S 60
#define HOST_TOKEN "saferun-escape-host-listener"

static int result_fd = -1;  /* the pipe to the parent, in an attempt's child */
static int host_port = 0;
static const char *current_name = "";

/* Send this attempt's one line to the parent and end the child. */
static void verdict(int allowed, const char *fmt, ...) {
    char detail[400], line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    int n = snprintf(line, sizeof(line), "%s: %s (%s)\n", current_name,
                     allowed ? "ALLOWED" : "blocked", detail);
    if (write(result_fd, line, (size_t)n) < 0) _exit(3);
    _exit(0);
}

static const char *ename(int err) {
    const char *name = strerrorname_np(err);
    return name ? name : "?";
}

/* The usual outcome of one call: success -> ALLOWED, failure -> blocked with errno. */
static void by_result(long ret, const char *what) {
    if (ret >= 0) verdict(1, "%s succeeded", what);
    verdict(0, "%s: %s", what, ename(errno));
}

/* Permission-only verdict for calls whose harmless arguments cannot succeed: refused by
 * capability/seccomp (EPERM, EACCES) or unknown to the kernel (ENOSYS) -> blocked; any
 * other errno means the permission check passed and real arguments would work. */
static void by_permission(long ret, const char *what) {
    if (ret >= 0) verdict(1, "%s succeeded", what);
    int err = errno;
    if (err == EPERM || err == EACCES || err == ENOSYS)
        verdict(0, "%s: %s", what, ename(err));
    verdict(1, "%s passed the permission check (%s with harmless arguments)", what, ename(err));
}

/* ---- filesystem ---------------------------------------------------------------- */

static void a_write_root(void) {
    int fd = open("/saferun-escape-probe", O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        close(fd);
        unlink("/saferun-escape-probe");
        verdict(1, "created /saferun-escape-probe");
    }
    verdict(0, "create /saferun-escape-probe: %s", ename(errno));
}

static void a_remount_root_rw(void) {
    by_result(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL), "mount -o remount,rw /");
}

/* A directory to mount on: /tmp/escape-mnt if it can be made, else /tmp itself. */
static const char *mount_target(void) {
    if (mkdir("/tmp/escape-mnt", 0700) == 0 || errno == EEXIST) return "/tmp/escape-mnt";
    return "/tmp";
}

static void a_mount_tmpfs(void) {
    const char *target = mount_target();
    if (mount("escape", target, "tmpfs", 0, "size=1m") == 0) {
        umount2(target, MNT_DETACH);
        verdict(1, "mounted tmpfs on %s", target);
    }
    verdict(0, "mount tmpfs on %s: %s", target, ename(errno));
}

static void a_mount_proc(void) {
    const char *target = mount_target();
    if (mount("proc", target, "proc", 0, NULL) == 0) {
        umount2(target, MNT_DETACH);
        verdict(1, "mounted a new proc on %s", target);
    }
    verdict(0, "mount proc on %s: %s", target, ename(errno));
}

static void a_unshare_user(void) { by_result(unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)"); }
static void a_unshare_mount(void) { by_result(unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)"); }
static void a_unshare_net(void) { by_result(unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)"); }

static void a_ptrace_other(void) {
    pid_t target = fork();
    if (target == 0) {
        for (;;) pause();
    }
    if (target < 0) verdict(0, "fork: %s", ename(errno));
    long ret = ptrace(PTRACE_ATTACH, target, NULL, NULL);
    int err = errno;
    if (ret == 0) {
        waitpid(target, NULL, __WALL);
        ptrace(PTRACE_DETACH, target, NULL, NULL);
    }
    kill(target, SIGKILL);
    waitpid(target, NULL, 0);
    if (ret == 0) verdict(1, "PTRACE_ATTACH to pid %d succeeded", (int)target);
    verdict(0, "PTRACE_ATTACH to pid %d: %s", (int)target, ename(err));
}

/* Run the setuid-root helper as a non-root user and read the euid it got. */
static void a_setuid_root(void) {
    if (getuid() == 0) {  /* docker's default user is root: become an ordinary user first */
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            verdict(0, "could not drop to uid 65534 first: %s", ename(errno));
    }
    int out[2];
    if (pipe(out) != 0) verdict(0, "pipe: %s", ename(errno));
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        execl("/bin/suid_helper", "suid_helper", (char *)NULL);
        dprintf(1, "exec=%s\n", ename(errno));
        _exit(127);
    }
    close(out[1]);
    char buf[128] = {0};
    ssize_t n = read(out[0], buf, sizeof(buf) - 1);
    waitpid(pid, NULL, 0);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    int euid = -1;
    if (sscanf(buf, "euid=%d", &euid) == 1 && euid == 0)
        verdict(1, "uid %d ran setuid-root /bin/suid_helper: euid=0", (int)getuid());
    verdict(0, "uid %d ran setuid-root /bin/suid_helper: %s", (int)getuid(), buf[0] ? buf : "no output");
}

static void a_chown_other(void) {
    by_result(chown("/escape/other-user", getuid(), getgid()), "chown uid-1234 file /escape/other-user");
}

static void a_chmod_other(void) {
    by_result(chmod("/escape/other-user", 06777), "chmod 6777 uid-1234 file /escape/other-user");
}

static void a_mknod_block(void) {
    const char *path = access("/tmp", W_OK) == 0 ? "/tmp/escape-sda" : "/escape-sda";
    if (mknod(path, S_IFBLK | 0600, makedev(8, 0)) == 0) {
        int fd = open(path, O_RDONLY);
        int err = errno;
        if (fd >= 0) close(fd);
        unlink(path);
        verdict(1, "mknod block 8:0 at %s succeeded; open: %s", path,
                fd >= 0 ? "succeeded" : ename(err));
    }
    verdict(0, "mknod block 8:0 at %s: %s", path, ename(errno));
}

/* ---- kernel interfaces --------------------------------------------------------- */

static void a_raw_socket(void) {
    by_result(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), "socket(AF_INET, SOCK_RAW)");
}

static void a_packet_socket(void) {
    by_result(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), "socket(AF_PACKET, SOCK_RAW)");
}

static void a_init_module(void) {
    static const char junk[64] = "not a kernel module";
    by_permission(syscall(SYS_init_module, junk, sizeof(junk), ""), "init_module");
}

static void a_finit_module(void) {
    int fd = open("/proc/self/exe", O_RDONLY);  /* an ELF file, but no module */
    if (fd < 0) fd = open("/bin/escape_probe", O_RDONLY);
    by_permission(syscall(SYS_finit_module, fd, "", 0), "finit_module");
}

static void a_keyctl(void) {
    by_result(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL), "keyctl(JOIN_SESSION_KEYRING)");
}

static void a_bpf(void) {
    struct bpf_insn prog[2];
    memset(prog, 0, sizeof(prog));
    prog[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  /* r0 = 0 */
    prog[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insn_cnt = 2;
    attr.insns = (unsigned long)prog;
    attr.license = (unsigned long)"GPL";
    by_result(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)), "bpf(BPF_PROG_LOAD)");
}

static void a_perf_event_open(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.disabled = 1;
    by_result(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0UL), "perf_event_open(task clock)");
}

/* Open a file and read from it: ALLOWED only if bytes came back (docker masks some of
 * these paths with /dev/null, which opens but reads nothing). */
static void read_file(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) verdict(0, "open %s: %s", path, ename(errno));
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    int err = errno;
    close(fd);
    if (n > 0) verdict(1, "read %zd bytes from %s", n, path);
    if (n == 0) verdict(0, "%s opens but reads 0 bytes (masked)", path);
    verdict(0, "read %s: %s", path, ename(err));
}

static void a_dev_mem(void) { read_file("/dev/mem"); }
static void a_dev_kmsg(void) { read_file("/dev/kmsg"); }
static void a_proc_kcore(void) { read_file("/proc/kcore"); }

static void a_dmesg(void) {
    char buf[256];
    long n = syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, (int)sizeof(buf));
    if (n > 0) verdict(1, "syslog(READ_ALL) returned %ld bytes of the kernel log", n);
    if (n == 0) verdict(0, "syslog(READ_ALL) returned nothing");
    verdict(0, "syslog(READ_ALL): %s", ename(errno));
}

static void a_proc_sys_hostname(void) {
    char name[256] = {0};
    int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, name, sizeof(name) - 1);
        close(fd);
        name[n > 0 ? n : 0] = 0;
    }
    fd = open("/proc/sys/kernel/hostname", O_WRONLY);
    if (fd < 0) verdict(0, "open /proc/sys/kernel/hostname for writing: %s", ename(errno));
    ssize_t n = write(fd, name, strlen(name));  /* the same name back: harmless */
    int err = errno;
    close(fd);
    if (n >= 0) verdict(1, "wrote /proc/sys/kernel/hostname");
    verdict(0, "write /proc/sys/kernel/hostname: %s", ename(err));
}

/* Open for writing and close without writing anything: opening proves the access. */
static void open_for_write(const char *path) {
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        close(fd);
        verdict(1, "opened %s for writing (nothing written)", path);
    }
    verdict(0, "open %s for writing: %s", path, ename(errno));
}

static void a_proc_sys_core_pattern(void) { open_for_write("/proc/sys/kernel/core_pattern"); }
static void a_sysrq_trigger(void) { open_for_write("/proc/sysrq-trigger"); }
static void a_sys_uevent_helper(void) { open_for_write("/sys/kernel/uevent_helper"); }

static void a_sethostname(void) {
    char name[256] = {0};
    gethostname(name, sizeof(name) - 1);
    by_result(sethostname(name, strlen(name)), "sethostname(current name)");
}

static void a_reboot(void) {
    by_permission(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                          LINUX_REBOOT_CMD_CAD_OFF, NULL),
                  "reboot(LINUX_REBOOT_CMD_CAD_OFF)");
}

static void a_clock_settime(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    by_result(clock_settime(CLOCK_REALTIME, &now), "clock_settime(CLOCK_REALTIME, now)");
}

/* ---- the engine's control socket ------------------------------------------------ */

static char found_socket[512];

static int find_engine_socket(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)flag;
    (void)ftw;
    if (strncmp(path, "/proc", 5) == 0 || strncmp(path, "/sys", 4) == 0) return FTW_SKIP_SUBTREE;
    if (S_ISSOCK(st->st_mode) && (strstr(path, "docker") || strstr(path, "containerd"))) {
        snprintf(found_socket, sizeof(found_socket), "%s", path);
        return FTW_STOP;
    }
    return FTW_CONTINUE;
}

static void a_docker_socket(void) {
    static const char *known[] = {"/var/run/docker.sock", "/run/docker.sock",
                                  "/run/containerd/containerd.sock",
                                  "/var/run/containerd/containerd.sock", NULL};
    struct stat st;
    found_socket[0] = 0;
    for (int i = 0; known[i] && !found_socket[0]; i++)
        if (stat(known[i], &st) == 0 && S_ISSOCK(st.st_mode))
            snprintf(found_socket, sizeof(found_socket), "%s", known[i]);
    if (!found_socket[0])
        nftw("/", find_engine_socket, 32, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
    if (!found_socket[0])
        verdict(0, "no docker.sock or containerd.sock anywhere in the container");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", found_socket);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
        verdict(1, "connected to %s", found_socket);
    verdict(0, "found %s but connect: %s", found_socket, ename(errno));
}

/* ---- resource exhaustion -------------------------------------------------------- */

static void a_fork_bomb(void) {
    static pid_t kids[FORK_BOUND];
    int count = 0, err = 0;
    for (; count < FORK_BOUND; count++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;) pause();
        }
        if (pid < 0) {
            err = errno;
            break;
        }
        kids[count] = pid;
    }
    for (int i = 0; i < count; i++) kill(kids[i], SIGKILL);
    for (int i = 0; i < count; i++) waitpid(kids[i], NULL, 0);
    if (count >= FORK_BOUND) verdict(1, "forked=%d bound=%d: no limit reached", count, FORK_BOUND);
    verdict(0, "forked=%d bound=%d: fork failed with %s", count, FORK_BOUND, ename(err));
}

static void a_memory_bomb(void) {
    int progress[2];
    if (pipe(progress) != 0) verdict(0, "pipe: %s", ename(errno));
    pid_t pid = fork();
    if (pid == 0) {  /* the bomb: touch 16 MiB chunks, report each to the parent */
        close(progress[0]);
        for (int mib = 16; mib <= MEMORY_BOUND_MIB; mib += 16) {
            char *chunk = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (chunk == MAP_FAILED) _exit(12);
            memset(chunk, 0x5a, 16 << 20);
            if (write(progress[1], &mib, sizeof(mib)) < 0) _exit(13);
        }
        _exit(0);
    }
    close(progress[1]);
    int mib = 0, last = 0;
    while (read(progress[0], &mib, sizeof(mib)) == (ssize_t)sizeof(mib)) last = mib;
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        verdict(0, "allocator killed by signal %d (%s) after %d MiB of %d",
                WTERMSIG(status), sigabbrev_np(WTERMSIG(status)), last, MEMORY_BOUND_MIB);
    if (WEXITSTATUS(status) == 0)
        verdict(1, "allocated and touched %d MiB: no limit reached", last);
    verdict(0, "allocation failed after %d MiB (exit %d)", last, WEXITSTATUS(status));
}

static void a_fd_exhaustion(void) {
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;  /* an attacker raises the soft limit first */
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
    int opened = 0, err = 0;
    for (; opened < FD_BOUND; opened++) {
        if (open("/dev/null", O_RDONLY) < 0) {
            err = errno;
            break;
        }
    }
    if (opened >= FD_BOUND)
        verdict(1, "opened=%d bound=%d nofile=%llu", opened, FD_BOUND, (unsigned long long)lim.rlim_max);
    verdict(0, "opened=%d bound=%d nofile=%llu: %s", opened, FD_BOUND,
            (unsigned long long)lim.rlim_max, ename(err));
}

/* ---- the host's network --------------------------------------------------------- */

/* The default gateway (the host's end of the bridge) from /proc/net/route. */
static int default_gateway(struct in_addr *gw, char *ifname, size_t ifsize) {
    FILE *f = fopen("/proc/net/route", "r");
    if (!f) return -1;
    char line[256], iface[IFNAMSIZ];
    unsigned dest, gate, flags;
    int found = -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%15s %x %x %x", iface, &dest, &gate, &flags) == 4 && dest == 0 && gate) {
            gw->s_addr = gate;
            snprintf(ifname, ifsize, "%s", iface);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Connect with a 2 s timeout; 0 on success, else errno. */
static int connect_tcp(struct in_addr addr, int port, int *fd_out) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return errno;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr};
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return err;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (poll(&pfd, 1, 2000) != 1) {
        close(fd);
        return ETIMEDOUT;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* Did we reach the test's listener on the host? It greets with HOST_TOKEN. */
static void host_listener(struct in_addr addr, const char *where) {
    if (!host_port) verdict(0, "no --port given: nothing to reach");
    int fd = -1;
    int err = connect_tcp(addr, host_port, &fd);
    if (err) verdict(0, "connect %s:%d: %s", where, host_port, ename(err));
    char buf[64] = {0};
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ssize_t n = poll(&pfd, 1, 2000) == 1 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (n > 0 && strncmp(buf, HOST_TOKEN, strlen(HOST_TOKEN)) == 0)
        verdict(1, "reached the host's 127.0.0.1:%d listener via %s", host_port, where);
    verdict(0, "connected to %s:%d, but not to the host's listener", where, host_port);
}

static void a_host_loopback(void) {
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    host_listener(lo, "127.0.0.1");
}

static void a_gateway_localport(void) {
    struct in_addr gw;
    char iface[IFNAMSIZ];
    if (default_gateway(&gw, iface, sizeof(iface)) != 0) verdict(0, "no default route");
    host_listener(gw, inet_ntoa(gw));
}

static void a_host_interfaces(void) {
    DIR *dir = opendir("/sys/class/net");
    if (!dir) verdict(0, "/sys/class/net: %s", ename(errno));
    char seen[300] = "";
    int host = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.') continue;
        if (strlen(seen) + strlen(entry->d_name) + 2 < sizeof(seen)) {
            if (seen[0]) strcat(seen, ",");
            strcat(seen, entry->d_name);
        }
        if (strncmp(entry->d_name, "docker", 6) == 0 || strncmp(entry->d_name, "br-", 3) == 0 ||
            strncmp(entry->d_name, "veth", 4) == 0)
            host = 1;
    }
    closedir(dir);
    if (host) verdict(1, "sees the host's interfaces: %s", seen);
    verdict(0, "own interfaces only: %s", seen);
}

/* ARP who-has for the gateway from a packet socket: an answer proves the container can put
 * arbitrary frames on the host's bridge (ARP spoofing of its neighbours). Only a request
 * is sent, never a spoofed reply. */
static void a_arp_gateway(void) {
    struct in_addr gw;
    char iface[IFNAMSIZ];
    if (default_gateway(&gw, iface, sizeof(iface)) != 0) verdict(0, "no default route");
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ARP));
    if (fd < 0) verdict(0, "socket(AF_PACKET): %s", ename(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) verdict(0, "SIOCGIFHWADDR: %s", ename(errno));
    unsigned char mac[6];
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(fd, SIOCGIFADDR, &ifr) != 0) verdict(0, "SIOCGIFADDR: %s", ename(errno));
    struct in_addr self = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
    unsigned char frame[42];
    memset(frame, 0xff, 6);                                   /* broadcast */
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x08, frame[13] = 0x06;                       /* ARP */
    unsigned char arp[28] = {0, 1, 8, 0, 6, 4, 0, 1};         /* Ethernet/IPv4, request */
    memcpy(arp + 8, mac, 6);
    memcpy(arp + 14, &self, 4);
    memset(arp + 18, 0, 6);
    memcpy(arp + 24, &gw, 4);
    memcpy(frame + 14, arp, 28);
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
                             .sll_ifindex = (int)if_nametoindex(iface), .sll_halen = 6};
    memset(ll.sll_addr, 0xff, 6);
    if (sendto(fd, frame, sizeof(frame), 0, (struct sockaddr *)&ll, sizeof(ll)) < 0)
        verdict(0, "send ARP request: %s", ename(errno));
    for (int tries = 0; tries < 20; tries++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) != 1) continue;
        unsigned char reply[128];
        ssize_t n = recv(fd, reply, sizeof(reply), 0);
        if (n >= 42 && reply[21] == 2 && memcmp(reply + 28, &gw, 4) == 0)
            verdict(1, "raw ARP on %s: gateway %s is at %02x:%02x:%02x:%02x:%02x:%02x", iface,
                    inet_ntoa(gw), reply[22], reply[23], reply[24], reply[25], reply[26], reply[27]);
    }
    verdict(1, "sent a raw ARP request on %s (no reply seen)", iface);
}

/* ---- driver ------------------------------------------------------------------------ */

struct attempt {
    const char *name;
    void (*run)(void);
};

static const struct attempt ATTEMPTS[] = {
    {"write_root", a_write_root},
    {"remount_root_rw", a_remount_root_rw},
    {"mount_tmpfs", a_mount_tmpfs},
    {"mount_proc", a_mount_proc},
    {"unshare_user", a_unshare_user},
    {"unshare_mount", a_unshare_mount},
    {"unshare_net", a_unshare_net},
    {"ptrace_other", a_ptrace_other},
    {"setuid_root", a_setuid_root},
    {"chown_other", a_chown_other},
    {"chmod_other", a_chmod_other},
    {"raw_socket", a_raw_socket},
    {"packet_socket", a_packet_socket},
    {"init_module", a_init_module},
    {"finit_module", a_finit_module},
    {"keyctl", a_keyctl},
    {"bpf", a_bpf},
    {"perf_event_open", a_perf_event_open},
    {"dev_mem", a_dev_mem},
    {"dev_kmsg", a_dev_kmsg},
    {"proc_kcore", a_proc_kcore},
    {"dmesg", a_dmesg},
    {"proc_sys_hostname", a_proc_sys_hostname},
    {"proc_sys_core_pattern", a_proc_sys_core_pattern},
    {"sysrq_trigger", a_sysrq_trigger},
    {"sys_uevent_helper", a_sys_uevent_helper},
    {"sethostname", a_sethostname},
    {"reboot", a_reboot},
    {"clock_settime", a_clock_settime},
    {"mknod_block", a_mknod_block},
    {"docker_socket", a_docker_socket},
    {"fork_bomb", a_fork_bomb},
    {"memory_bomb", a_memory_bomb},
    {"fd_exhaustion", a_fd_exhaustion},
    {"host_loopback", a_host_loopback},
    {"gateway_localport", a_gateway_localport},
    {"host_interfaces", a_host_interfaces},
    {"arp_gateway", a_arp_gateway},
};

static void run_attempt(const struct attempt *attempt) {
    int fds[2];
    current_name = attempt->name;
    if (pipe(fds) != 0) {
        printf("%s: ALLOWED (probe error: pipe: %s)\n", attempt->name, ename(errno));
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("%s: ALLOWED (probe error: fork: %s)\n", attempt->name, ename(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        result_fd = fds[1];
        alarm(ATTEMPT_TIMEOUT_S);
        attempt->run();
        verdict(1, "probe error: attempt ended without a verdict");
    }
    close(fds[1]);
    char line[512];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof(line) - 1 && (n = read(fds[0], line + used, sizeof(line) - 1 - used)) > 0)
        used += (size_t)n;
    close(fds[0]);
    line[used] = 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (used > 0) {
        fputs(line, stdout);
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        printf("%s: ALLOWED (no verdict within %d s)\n", attempt->name, ATTEMPT_TIMEOUT_S);
    } else if (WIFSIGNALED(status)) {
        printf("%s: blocked (attempt killed by signal %s)\n", attempt->name,
               sigabbrev_np(WTERMSIG(status)));
    } else {
        printf("%s: ALLOWED (probe error: no verdict, exit %d)\n", attempt->name,
               WEXITSTATUS(status));
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--port") == 0) {
        host_port = atoi(argv[2]);
        first = 3;
    }
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < sizeof(ATTEMPTS) / sizeof(ATTEMPTS[0]); i++) puts(ATTEMPTS[i].name);
        return 0;
    }
    for (size_t i = 0; i < sizeof(ATTEMPTS) / sizeof(ATTEMPTS[0]); i++) {
        int wanted = first >= argc;
        for (int a = first; a < argc; a++) wanted |= strcmp(argv[a], ATTEMPTS[i].name) == 0;
        if (wanted) run_attempt(&ATTEMPTS[i]);
    }
    return 0;
}
