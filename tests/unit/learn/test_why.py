"""`saferun why`: each denial becomes the manifest change that would allow it."""

from __future__ import annotations

from saferun.learn.learning import parse_docker_diff
from saferun.learn.why import erofs_paths, explain, explain_output, explain_syscalls
from saferun.profiles.seccomp import load_data

# Real output of saferun-test/nginx:1 under a read-only root without a tmpfs for its cache.
NGINX_EROFS = ('2026/11/29 05:29:53 [emerg] 1#1: mkdir() "/var/lib/nginx/body" failed '
               "(30: Read-only file system)\n")
BUSYBOX_EROFS = ("mkdir: can't create directory '/data/cache': Read-only file system\n"
                 "touch: /srv/app/state.db: Read-only file system\n"
                 "sh: can't create /marker: Read-only file system\n"
                 "cp: unrelated line without the error /etc/x\n")


def test_paths_in_read_only_errors() -> None:
    assert erofs_paths(NGINX_EROFS) == ["/var/lib/nginx/body"]
    assert erofs_paths(BUSYBOX_EROFS) == ["/data/cache", "/srv/app/state.db", "/marker"]


def test_nginx_cache_needs_a_tmpfs() -> None:
    [finding] = explain_output(NGINX_EROFS, writable=["/tmp", "/run"])
    assert finding.line() == (
        'write to /var/lib/nginx/body refused -> add a tmpfs at /var/lib/nginx: '
        '[filesystem] tmpfs += [{ target = "/var/lib/nginx" }]')


def test_top_level_and_already_writable_paths_need_a_volume() -> None:
    findings = explain_output(BUSYBOX_EROFS, writable=["/srv/app"])
    assert [f.subject for f in findings] == ["/data", "/srv/app/state.db", "/marker"]
    assert findings[1].change.startswith("mount a volume at /srv/app/state.db")
    assert findings[2].change.startswith("mount a volume at /marker")


def test_repeated_errors_give_one_finding() -> None:
    assert len(explain_output(NGINX_EROFS * 3, writable=[])) == 1


def test_syscall_denials_name_the_allow_entry_and_capability() -> None:
    findings = explain_syscalls(["mount", "mkdir", "mount"],
                                capability_calls=load_data().capabilities)
    assert [f.line() for f in findings] == [
        'syscall mkdir denied -> [seccomp] allow += ["mkdir"]',
        'syscall mount denied -> [seccomp] allow += ["mount"] '
        "(the kernel also requires CAP_SYS_ADMIN)",
    ]
    [learned] = explain_syscalls(["mkdir"], learned=True)
    assert learned.change == '[seccomp] learned += ["mkdir"]'


def test_explain_orders_seccomp_then_output_then_diff() -> None:
    diff = parse_docker_diff("C /run\nA /run/app.pid\nC /tmp\nA /tmp/x\n")
    findings = explain(denied_syscalls=["mount"], output=NGINX_EROFS, diff=diff,
                       writable=["/tmp"])
    assert [f.kind for f in findings] == ["seccomp", "read-only", "diff"]
    assert findings[2].subject == "/run"


def test_nothing_to_explain() -> None:
    assert explain(output="all good\n") == []


# --- a guarded call already in the list: name its fallback -----------------------------------


def test_a_guarded_call_already_listed_names_its_missing_fallback() -> None:
    data = load_data()
    lifters = {name: tuple(g.lifted_by) for name, g in data.guards.items()}
    # memcached: clone3 learned, clone not; the clone3 guard answers ENOSYS, glibc calls
    # clone, which is denied. The log-mode replay records clone3 (its guard logs).
    [finding] = explain_syscalls(["clone3"], learned=True, allowed={"clone3", "read"},
                                 fallbacks=data.fallbacks, guards=lifters)
    assert finding.subject == "clone"
    assert finding.change == '[seccomp] learned += ["clone"]'
    assert "clone3 is already in the list" in finding.line()
    # Fallback present too: the guard itself is what refuses; lifting it is the change.
    [guard] = explain_syscalls(["clone3"], learned=True, allowed={"clone3", "clone"},
                               fallbacks=data.fallbacks, guards=lifters)
    assert guard.subject == "clone3" and "argument guard" in guard.cause
    assert '[seccomp] allow += ["@namespaces"]' in guard.change
    assert '[capabilities] add += ["SYS_ADMIN"]' in guard.change
    # Not listed at all: the plain finding.
    [plain] = explain_syscalls(["clone3"], learned=True, allowed={"read"},
                               fallbacks=data.fallbacks, guards=lifters)
    assert plain.change == '[seccomp] learned += ["clone3"]'


# --- permission, pid file, port and capability errors ---------------------------------------


def test_permission_denied_in_the_image_needs_a_tmpfs_writable_by_the_user() -> None:
    from saferun.learn.why import Context

    context = Context(writable=["/tmp", "/data"], tmpfs=["/tmp"], user="65534:65534")
    [image, volume] = explain_output(
        "mkdir: can't create directory '/var/cache/app': Permission denied\n"
        "open /data/db.sqlite: permission denied\n", [], context)
    assert image.kind == "permission" and image.subject == "/var/cache"
    assert image.change.startswith("add a tmpfs at /var/cache (mode 1777: writable by the "
                                   "app's user (65534:65534))")
    assert volume.change.startswith("make the mount at /data writable by the app's user")


def test_read_only_and_pid_file_errors() -> None:
    from saferun.learn.why import Context

    output = ("2026/11/29 [emerg] open() \"/run/nginx.pid\" failed (30: Read-only file system)\n"
              "Unable to write pid file\n"
              "could not create /var/run/memcached/memcached.pid: Permission denied\n")
    findings = explain_output(output, [], Context(user="11211"))
    assert [f.kind for f in findings] == ["pid-file", "pid-file", "pid-file"]
    assert findings[0].change.startswith("add a tmpfs at /run ")
    assert "point the app's pid file into /tmp" in findings[1].change
    assert findings[2].subject == "/var/run/memcached"
    # The nginx EROFS line still gives the plain tmpfs finding through the pid branch.
    assert 'tmpfs += [{ target = "/run" }]' in findings[0].change


def test_port_conflicts_name_a_different_host_port() -> None:
    from saferun.learn.why import Context

    docker_error = ("driver failed programming external connectivity on endpoint web (abc): "
                    "Bind for 127.0.0.1:8080 failed: port is already allocated")
    [host] = explain_output(docker_error, [], Context(ports={8080: 80}))
    assert host.kind == "port" and host.subject == "8080"
    assert "[network] ports = [{ container = 80, host = <a free port> }]" in host.change
    [inside] = explain_output('bind() to 0.0.0.0:80 failed (98: Address already in use)', [],
                              Context(ports={8080: 80}))
    assert "cannot bind port 80" in inside.cause


def test_operation_not_permitted_names_the_capability() -> None:
    findings = explain_output("chown: /srv/x: Operation not permitted\n"
                              "setgroups: Operation not permitted\n"
                              "weird: Operation not permitted\n", [])
    assert [f.change for f in findings[:2]] == ['[capabilities] add += ["CHOWN"]',
                                                '[capabilities] add += ["SETGID"]']
    assert 'errno = "ENOSYS"' in findings[2].note
