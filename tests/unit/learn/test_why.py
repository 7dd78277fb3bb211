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
