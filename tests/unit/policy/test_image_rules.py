"""Image rules: a failing and a passing case per rule, by id; secret patterns both ways."""

from __future__ import annotations

from dataclasses import replace

import pytest

from saferun.policy.catalogue import all_rules, explain
from saferun.policy.image_rules import (
    GATE_RULES,
    IMAGE_RULES,
    IMAGE_RULES_TABLE,
    FileFact,
    FilesystemSummary,
    HistoryEntry,
    ImageFacts,
    ImagePolicy,
    evaluate_image,
    facts_from_config,
    find_secrets,
    named_secret,
    normalised_name,
    registry_allowed,
    tool_category,
)
from saferun.policy.rules import RULES
from saferun.policy.severity import Severity

# An image that passes every image rule.
CLEAN = ImageFacts(
    reference="registry.example:5000/team/app:1.2", user="1000", env=(("PATH", "/bin"),),
    healthcheck=("CMD", "true"), history=(HistoryEntry("ADD file:abc in /"),
                                          HistoryEntry("USER 1000", empty_layer=True)),
    size=20 << 20, layers=3, filesystem=FilesystemSummary(files=100))
POLICY = ImagePolicy(registries=("registry.example:5000",),
                     absent=frozenset({"shell", "package-manager", "compiler"}))
FS = FilesystemSummary


def ids(facts: ImageFacts, policy: ImagePolicy = POLICY) -> set[str]:
    return {r.rule.id for r in evaluate_image(facts, policy) if not r.passed}


# rule id -> (facts that fail it, facts that still pass it), as changes to CLEAN
CASES: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "image-registry": ({"reference": "docker.io/library/nginx:1.27"},
                       {"reference": "registry.example:5000/other/app:2"}),
    "image-tag-latest": ({"reference": "registry.example:5000/team/app:latest"},
                         {"reference": "registry.example:5000/team/app@sha256:" + "a" * 64}),
    "image-user-root": ({"user": ""}, {"user": "app:app"}),
    "image-healthcheck": ({"healthcheck": ("NONE",)}, {"healthcheck": ("CMD-SHELL", "true")}),
    "image-setuid": ({"filesystem": FS(setuid=(FileFact("/bin/su", 0o4755),))},
                     {"filesystem": FS(setuid=())}),
    "image-secret-config": ({"env": (("AWS_ACCESS_KEY_ID", "AKIAQ3EGRTZ5BXK4LMNO"),)},
                            {"env": (("AWS_ACCESS_KEY_ID_FILE", "/run/secrets/aws"),)}),
    "image-secret-file": ({"filesystem": FS(secrets=(FileFact("/root/.ssh/id_rsa", 0o600,
                                                               secret="SSH private key"),))},
                          {"filesystem": FS()}),
    "image-update-alone": ({"history": (HistoryEntry("RUN /bin/sh -c apt-get update"),)},
                           {"history": (HistoryEntry(
                               "RUN /bin/sh -c apt-get update && apt-get install -y curl"),)}),
    "image-shell": ({"filesystem": FS(tools=(("shell", "/bin/sh"),))},
                    {"filesystem": FS(tools=(("compiler", "/usr/bin/gcc"),))}),
    "image-package-manager": ({"filesystem": FS(tools=(("package-manager", "/usr/bin/apt"),))},
                              {"filesystem": FS(tools=())}),
    "image-compiler": ({"filesystem": FS(tools=(("compiler", "/usr/bin/gcc"),))},
                       {"filesystem": FS(tools=(("shell", "/bin/sh"),))}),
    "image-size": ({"size": 2048 << 20}, {"size": 1024 << 20}),
    "image-layers": ({"layers": 51}, {"layers": 50}),
}


def test_every_checked_rule_has_a_case() -> None:
    checked = {r.rule.id for r in IMAGE_RULES_TABLE if r.rule.id not in GATE_RULES}
    assert set(CASES) == checked | {"image-tag-latest"}


def test_clean_image_passes_every_rule() -> None:
    assert ids(CLEAN) == set()


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fails_and_passes(rule_id: str) -> None:
    failing, passing = CASES[rule_id]
    assert ids(replace(CLEAN, **failing)) == {rule_id}  # type: ignore[arg-type]
    assert rule_id not in ids(replace(CLEAN, **passing))  # type: ignore[arg-type]


def test_tool_rules_only_where_the_policy_says_the_app_needs_none() -> None:
    busybox = replace(CLEAN, filesystem=FS(tools=(("shell", "/bin/sh"),
                                                  ("package-manager", "/bin/dpkg"))))
    assert ids(busybox, ImagePolicy()) == set()
    assert ids(busybox, ImagePolicy(absent=frozenset({"shell"}))) == {"image-shell"}


def test_filesystem_rules_are_skipped_without_a_filesystem_walk() -> None:
    config_only = replace(CLEAN, filesystem=None)
    evaluated = {r.rule.id for r in evaluate_image(config_only, POLICY)}
    assert "image-setuid" not in evaluated and "image-user-root" in evaluated


def test_digest_required_is_a_high_finding() -> None:
    results = evaluate_image(CLEAN, replace(POLICY, digest="require"))
    digest = next(r for r in results if r.rule.id == "image-digest")
    assert not digest.passed and digest.severity is Severity.HIGH
    pinned = replace(CLEAN, reference=CLEAN.reference + "@sha256:" + "b" * 64)
    assert "image-digest" not in ids(pinned, replace(POLICY, digest="require"))


def test_image_rules_share_the_rule_table_metadata() -> None:
    assert set(IMAGE_RULES).isdisjoint(RULES)
    everything = all_rules()
    for rule in IMAGE_RULES.values():
        assert everything[rule.id] is rule
        assert rule.cis and all(s.startswith("4.") for s in rule.cis)
        assert rule.anchor == f"docs/images.md#{rule.id}"
        assert f"{rule.id}: {rule.title}" in explain(rule.id)


# --- secrets: true positives and the false positives real images would give ---------------

SECRETS_IN_ENV = [
    ("AWS_ACCESS_KEY_ID", "AKIAQ3EGRTZ5BXK4LMNO"),
    ("GITHUB_TOKEN", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("DB_PASSWORD", "s3cr3t-Pa55word"),
    ("DD_DATABASE_PASSWORD", "defectdojo"),  # a default password, as DefectDojo's image had
    ("API_KEY", "9f8e7d6c5b4a39281706"),
    ("DATABASE_URL", "postgres://app:Xk29fjq8Lm@db:5432/app"),
    ("TLS_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow..."),
    ("SLACK_TOKEN", "xoxb-123456789012-abcdefghijkl"),
]

# ENV of real official images (python, nginx, postgres, redis, node, golang, openjdk) and
# common safe patterns: none of them is a secret.
NOT_SECRETS_IN_ENV = [
    ("PATH", "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D"),
    ("PYTHON_SHA256", "07a0d1c3a7a1b8d7e0e9d4c8c5e5f9e8d3a5b7c9e1f2a3b4c5d6e7f8a9b0c1d2"),
    ("NGINX_VERSION", "1.27.0"), ("NJS_VERSION", "0.8.4"), ("PKG_RELEASE", "1~bookworm"),
    ("PG_SHA256", "f5e6e9a6d6e0e4c6c5b5a6e7d8c9b0a1f2e3d4c5b6a7980112233445566778899"),
    ("PGDATA", "/var/lib/postgresql/data"), ("GOSU_VERSION", "1.17"),
    ("REDIS_DOWNLOAD_SHA", "a8c8d7b1e0f2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8"),
    ("YARN_VERSION", "1.22.22"), ("JAVA_HOME", "/opt/java/openjdk"), ("LANG", "C.UTF-8"),
    ("POSTGRES_PASSWORD_FILE", "/run/secrets/postgres-password"),
    ("MYSQL_ROOT_PASSWORD", "${MYSQL_ROOT_PASSWORD}"), ("TOKEN", "changeme"),
    ("SECRET_KEY", ""), ("API_TOKEN_HEADER", "X-Api-Token"), ("PASSWORD_LENGTH", "16"),
    ("AUTH_TOKEN_URL", "https://auth.example.com/token"),
]


@pytest.mark.parametrize(("name", "value"), SECRETS_IN_ENV)
def test_secret_env_values_are_found(name: str, value: str) -> None:
    assert named_secret(name, value) is not None


@pytest.mark.parametrize(("name", "value"), NOT_SECRETS_IN_ENV)
def test_ordinary_env_values_are_not_secrets(name: str, value: str) -> None:
    assert named_secret(name, value) is None


SECRET_HISTORY = [
    "|1 NPM_TOKEN=npm_Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH3jK5 /bin/sh -c npm ci",
    "/bin/sh -c echo \"machine github.com password=Qx7vB2nM9kLp\" > /root/.netrc",
    "RUN /bin/sh -c git clone https://ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8@github.com/o/r",
    "/bin/sh -c #(nop)  ENV AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
]
PLAIN_HISTORY = [
    "/bin/sh -c #(nop) ADD file:4d35f6c8bbbe6801cd5e3e1f2c4b0c8e in / ",
    "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates",
    "/bin/sh -c set -eux; savedAptMark=\"$(apt-mark showmanual)\"; gpg --batch --keyserver "
    "hkps://keys.openpgp.org --recv-keys \"$GPG_KEY\"",
    "RUN /bin/sh -c echo \"$DB_PASSWORD\" | docker login --password-stdin registry.example",
    "ENV PYTHON_VERSION=3.12.4",
    "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci # buildkit",
    "/bin/sh -c pip install --no-cache-dir -r requirements.txt --extra-index-url "
    "https://pypi.example/simple",
    "RUN /bin/sh -c export TOKEN=$(cat /run/secrets/token) && make",
]


@pytest.mark.parametrize("line", SECRET_HISTORY)
def test_secret_history_lines_are_found(line: str) -> None:
    assert find_secrets(line)


@pytest.mark.parametrize("line", PLAIN_HISTORY)
def test_plain_history_lines_are_not_secrets(line: str) -> None:
    assert find_secrets(line) == []


def test_secret_in_env_is_reported_once_and_masked() -> None:
    key = "AKIAQ3EGRTZ5BXK4LMNO"
    facts = replace(CLEAN, env=(("AWS_ACCESS_KEY_ID", key),),
                    history=(HistoryEntry(f"/bin/sh -c #(nop)  ENV AWS_ACCESS_KEY_ID={key}"),))
    result = next(r for r in evaluate_image(facts, POLICY) if r.rule.id == "image-secret-config")
    assert len(result.hits) == 1
    assert key not in result.hits[0].detail and "AKIA…" in result.hits[0].detail


def test_secret_only_in_history_is_reported() -> None:
    facts = replace(CLEAN, history=(HistoryEntry(SECRET_HISTORY[0]),))
    assert ids(facts) == {"image-secret-config"}


# --- tools, registries, engine JSON ---------------------------------------------------------

@pytest.mark.parametrize(("path", "category"), [
    ("/bin/sh", "shell"), ("/usr/bin/bash", "shell"), ("/bin/busybox", "shell"),
    ("/usr/bin/apt-get", "package-manager"), ("/sbin/apk", "package-manager"),
    ("/usr/local/bin/pip3.12", "package-manager"), ("/usr/bin/gcc-12", "compiler"),
    ("/usr/local/go/bin/go", None), ("/usr/local/bin/go", "compiler"), ("/usr/bin/g++", "compiler"),
    ("/usr/bin/python3", None), ("/etc/sh", None), ("/usr/bin/shred", None),
])
def test_tool_category(path: str, category: str | None) -> None:
    assert tool_category(path) == category


@pytest.mark.parametrize(("image", "name"), [
    ("nginx:1.27", "docker.io/library/nginx"),
    ("saferun-test/busybox:1", "docker.io/saferun-test/busybox"),
    ("index.docker.io/library/redis@sha256:" + "c" * 64, "docker.io/library/redis"),
    ("registry.example:5000/team/app:1", "registry.example:5000/team/app"),
    ("localhost/app:2", "localhost/app"),
    ("ghcr.io/acme/tool:3", "ghcr.io/acme/tool"),
])
def test_normalised_name(image: str, name: str) -> None:
    assert normalised_name(image) == name


def test_registry_allowlist() -> None:
    assert registry_allowed("nginx:1.27", ())
    assert registry_allowed("nginx:1.27", ("docker.io",))
    assert registry_allowed("nginx:1.27", ("index.docker.io",))
    assert not registry_allowed("nginx:1.27", ("registry.example:5000",))
    assert registry_allowed("ghcr.io/acme/tool:3", ("ghcr.io/acme",))
    assert not registry_allowed("ghcr.io/acme-evil/tool:3", ("ghcr.io/acme",))
    assert not registry_allowed("registry.example:5001/a:1", ("registry.example:5000",))


def test_facts_from_engine_json() -> None:
    inspect = {"Id": "sha256:" + "d" * 64, "Size": 1984273,
               "Config": {"User": "", "Env": ["PATH=/bin", "A=b=c"], "Labels": {"x": "y"},
                          "Healthcheck": {"Test": ["CMD", "true"]},
                          "ExposedPorts": {"80/tcp": {}}},
               "RootFS": {"Layers": ["sha256:1", "sha256:2"]}}
    history = [{"CreatedBy": "USER 1000"}, {"CreatedBy": "ADD file:x in /"}]  # newest first
    facts = facts_from_config("app:1", inspect, history)
    assert facts.env == (("PATH", "/bin"), ("A", "b=c"))
    assert facts.healthcheck == ("CMD", "true") and facts.layers == 2
    assert [h.created_by for h in facts.history] == ["ADD file:x in /", "USER 1000"]
    assert facts.exposed_ports == ("80/tcp",) and facts.labels == (("x", "y"),)
