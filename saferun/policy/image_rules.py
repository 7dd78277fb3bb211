"""Image rules as data: pure checks over the facts of one image (CIS Docker Benchmark section 4).

The facts (`ImageFacts`) are gathered at the edge by saferun.engine.image_files: the image's
config and history from the engine and a summary of its filesystem streamed from
`docker save`. Nothing here reads a file or asks the engine, so every rule is tested with
plain values. Rules are `saferun.policy.rules.Rule` objects (same ids, severities, weights, CIS
references, `saferun explain`, JSON and SARIF output, exposure score as the container
rules); their checks take `ImageFacts` instead of a `ContainerSpec`, so they sit in their
own table and are judged by `evaluate_image`.

Secret detection keeps its patterns as a table (`SECRET_PATTERNS`, `SECRET_FILES`) and
errs towards silence on placeholders, references (`$TOKEN`, `${X}`), file paths
(`*_FILE=/run/secrets/db`) and public values that merely look random (GPG key
fingerprints, checksums): a noisy secret rule gets ignored, which is worse than none.
Findings never print a secret: values are shown by their first four characters.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from saferun.model.normalise import is_root_user
from saferun.policy.rules import Hit, Rule, RuleResult, image_parts
from saferun.policy.severity import Severity

IMAGES_DOC = "docs/images.md"

# --- facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFact:
    """One noteworthy path of the image's merged filesystem (after whiteouts)."""

    path: str  # absolute, normalised
    mode: int = 0o644  # permission bits incl. setuid/setgid (0 for links)
    kind: str = "file"  # file | symlink | hardlink
    secret: str | None = None  # what makes it a secret (SECRET_FILES name or content match)


@dataclass(frozen=True)
class FilesystemSummary:
    """What streaming the image's layers found; only noteworthy paths are kept."""

    setuid: tuple[FileFact, ...] = ()  # regular files with the setuid or setgid bit
    secrets: tuple[FileFact, ...] = ()
    tools: tuple[tuple[str, str], ...] = ()  # (category, path): shell, package-manager, compiler
    files: int = 0  # entries seen in all layers
    whiteouts: int = 0  # deletions applied (.wh. and opaque directories)


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    empty_layer: bool = False


@dataclass(frozen=True)
class ImageFacts:
    """One image as the engine has it. `filesystem` is None when only the config was read."""

    reference: str
    image_id: str = ""
    user: str = ""
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    healthcheck: tuple[str, ...] | None = None  # Config.Healthcheck.Test; None: not set
    exposed_ports: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    size: int = 0  # bytes, as the engine reports
    layers: int = 0
    filesystem: FilesystemSummary | None = None


TOOL_CATEGORIES = ("shell", "package-manager", "compiler")


@dataclass(frozen=True)
class ImagePolicy:
    """The image part of a [policy] table (manifest merged with the team policy file)."""

    registries: tuple[str, ...] = ()  # allowed registries / prefixes; empty: any
    digest: str = "recommend"
    absent: frozenset[str] = frozenset()  # TOOL_CATEGORIES the app needs none of
    max_size_mb: int = 1024
    max_layers: int = 50


# --- tables: where tools live, what a secret looks like -------------------------------------

BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin",
                      "/usr/local/sbin"})
TOOLS: dict[str, frozenset[str]] = {
    "shell": frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"}),
    "package-manager": frozenset({"apt", "apt-get", "dpkg", "apk", "yum", "dnf", "microdnf",
                                  "rpm", "zypper", "pacman", "pip", "pip3", "npm"}),
    "compiler": frozenset({"gcc", "cc", "g++", "c++", "clang", "clang++", "tcc", "go", "rustc"}),
}


def tool_category(path: str) -> str | None:
    """`/usr/bin/gcc` -> "compiler"; versioned names count (`gcc-12`, `pip3.11`, `python3`: no)."""
    directory, name = posixpath.split(path)
    if directory not in BIN_DIRS:
        return None
    base = re.sub(r"(?:-[0-9][0-9.]*|[0-9][0-9.]*)$", "", name) if name not in ("g++", "c++") \
        else name
    for category, names in TOOLS.items():
        if name in names or base in names:
            return category
    return None


@dataclass(frozen=True)
class SecretPattern:
    """A credential pattern. Kept as text: `re` compiles (and caches) it on first use, so
    `saferun run`, which only needs the registry helpers here, does not pay for it."""

    id: str
    description: str
    regex: str
    value_group: int = 0  # the group that holds the secret (0: the whole match)


SECRET_PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern("aws-access-key-id", "an AWS access key id",
                  (r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])")),
    SecretPattern("private-key", "a private key block",
                  (r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?"
                             r"PRIVATE KEY(?: BLOCK)?-----")),
    SecretPattern("github-token", "a GitHub token",
                  (r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}"
                             r"|github_pat_[A-Za-z0-9_]{22,255})")),
    SecretPattern("gitlab-token", "a GitLab personal access token",
                  (r"(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,}")),
    SecretPattern("slack-token", "a Slack token",
                  (r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}")),
    SecretPattern("stripe-key", "a Stripe live key",
                  (r"(?<![A-Za-z0-9])[rs]k_live_[A-Za-z0-9]{20,}")),
    SecretPattern("google-api-key", "a Google API key",
                  (r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}")),
    SecretPattern("url-credentials", "a password in a URL",
                  (r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]{1,64}:([^/\s@]{1,128})@"),
                  value_group=1),
    # `DB_PASSWORD=...`, `--token hunter2...`-style assignments in RUN lines and build args.
    SecretPattern("assignment", "a credential assigned in clear",
                  (r"(?i)(?<![A-Za-z0-9])[A-Za-z0-9_]*(?:password|passwd|secret|token"
                             r"|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)"
                             r"[A-Za-z0-9_]*[ \t]*[=:][ \t]*[\"']?([^\s\"'&;|)]+)"),
                  value_group=1),
)

# Names of environment variables and labels whose value is a credential.
SECRET_NAME = (r"(?i)(?:^|[_.-])(?:password|passwd|pwd|secret|token|api[_-]?key"
               r"|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret"
               r"|auth[_-]?token|credentials?)(?:$|[_.-])")
# ...unless the name says the value is where the secret is, or about it, not the secret.
NOT_A_SECRET_NAME = (r"(?i)[_.-](?:file|path|dir|url|uri|version|length|type|name"
                     r"|id|header|env|mode|enabled?)$")
PLACEHOLDERS = frozenset({
    "changeme", "change-me", "change_me", "changeit", "password", "secret", "token", "example",
    "none", "null", "empty", "todo", "redacted", "dummy", "placeholder", "default", "notset",
    "not-set", "undefined", "xxxxxxxx", "your-token", "your_token", "yourpassword",
})

# Credential files, by their path's last components.
SECRET_FILES: tuple[tuple[str, str], ...] = (
    (".aws/credentials", "AWS credentials file"),
    (".docker/config.json", "Docker registry credentials"),
    (".ssh/id_rsa", "SSH private key"),
    (".ssh/id_dsa", "SSH private key"),
    (".ssh/id_ecdsa", "SSH private key"),
    (".ssh/id_ed25519", "SSH private key"),
    (".git-credentials", "git credentials"),
    (".netrc", "netrc credentials"),
    (".pypirc", "PyPI credentials"),
    (".npmrc", "npm credentials"),
    (".kube/config", "Kubernetes credentials"),
    (".pgpass", "PostgreSQL passwords"),
)
# Files whose first bytes are read to look for a private key block (small ones only).
KEY_SUFFIXES = (".pem", ".key")
KEY_SNIFF_BYTES = 64 << 10


def secret_file(path: str) -> str | None:
    """What credential file a path is, by name, or None."""
    for suffix, what in SECRET_FILES:
        if path.endswith("/" + suffix):
            return what
    return None


def _nontrivial(value: str, *, strict: bool = False) -> bool:
    """A value that could be a real credential: long enough, not a reference or placeholder.

    `strict` (free text such as RUN lines, where `token=...` is often an ordinary word)
    also drops plain lower-case words shorter than 16 characters.
    """
    v = value.strip().strip("'\"")
    if len(v) < 8 or v[0] in "$<{%/@~`" or "${" in v or v.startswith("$("):
        return False
    if v.lower() in PLACEHOLDERS or len(set(v.lower())) < 4:
        return False
    if re.fullmatch(r"[0-9.]+|true|false|yes|no|on|off", v, re.IGNORECASE):
        return False
    return not strict or not re.fullmatch(r"[a-z]+(?:[-_.][a-z]+)*", v) or len(v) >= 16


def mask(value: str) -> str:
    """Show a secret by its first four characters only."""
    return f"{value[:4]}… ({len(value)} chars)" if len(value) > 4 else "…"


@dataclass(frozen=True)
class SecretMatch:
    pattern: str
    description: str
    value: str


def find_secrets(text: str) -> list[SecretMatch]:
    """Every credential pattern in free text (history lines, label values), placeholders out."""
    found = []
    for pattern in SECRET_PATTERNS:
        for match in re.finditer(pattern.regex, text):
            value = match.group(pattern.value_group)
            if pattern.value_group and not _nontrivial(value,
                                                       strict=pattern.id == "assignment"):
                continue
            found.append(SecretMatch(pattern.id, pattern.description, value))
    # A token assigned to TOKEN=... is reported once, as the token.
    values = {m.value for m in found if m.pattern != "assignment"}
    return [m for m in found if m.pattern != "assignment"
            or not any(m.value in v or v in m.value for v in values)]


def named_secret(name: str, value: str) -> SecretMatch | None:
    """ENV/label `name=value` where the name says credential and the value is a real one."""
    found = [m for m in find_secrets(value) if m.pattern != "assignment"]
    if found:
        return found[0]
    if re.search(SECRET_NAME, name) and not re.search(NOT_A_SECRET_NAME, name) \
            and _nontrivial(value):
        return SecretMatch("named", f"a credential in {name}", value)
    return None


# --- checks ------------------------------------------------------------------------------

ImageCheck = Callable[[ImageFacts, ImagePolicy], list[Hit]]


def _user(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    name = facts.user.split(":")[0]
    if not name:
        return [Hit("no USER: the image runs as root unless the run says otherwise")]
    if is_root_user(name):
        return [Hit(f"USER {facts.user} is root")]
    return []


def _healthcheck(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    if not facts.healthcheck:
        return [Hit("no HEALTHCHECK instruction")]
    if facts.healthcheck[0] == "NONE":
        return [Hit("HEALTHCHECK NONE turns the health check off")]
    return []


def _setuid(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    if facts.filesystem is None:
        return []
    hits = []
    for item in facts.filesystem.setuid:
        bits = " and ".join(b for b, m in (("setuid", 0o4000), ("setgid", 0o2000))
                            if item.mode & m)
        hits.append(Hit(f"{item.path} is {bits} (mode {item.mode & 0o7777:04o})"))
    return hits


def _config_secrets(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    hits, seen = [], set()
    for where, pairs in (("ENV", facts.env), ("LABEL", facts.labels)):
        for name, value in pairs:
            match = named_secret(name, value)
            if match:
                seen.add(match.value)
                hits.append(Hit(f"{where} {name}: {match.description} ({mask(match.value)})"))
    for number, entry in enumerate(facts.history):
        for match in find_secrets(entry.created_by):
            if match.value in seen or any(match.value in s or s in match.value for s in seen):
                continue  # the ENV or LABEL that put it there is already reported
            seen.add(match.value)
            hits.append(Hit(f"history step {number + 1}: {match.description} "
                            f"({mask(match.value)}); `docker history` shows it to anyone "
                            "who can pull the image"))
    return hits


def _file_secrets(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    if facts.filesystem is None:
        return []
    return [Hit(f"{item.path}: {item.secret}") for item in facts.filesystem.secrets]


def _update_alone(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    hits = []
    for number, entry in enumerate(facts.history):
        text = entry.created_by
        if re.search(r"\b(?:apt-get|apt|yum|dnf|apk|microdnf)\s+(?:-\S+\s+)*update\b", text) \
                and not re.search(r"\b(?:install|upgrade|add)\b", text):
            hits.append(Hit(f"history step {number + 1}: package index updated in a step of "
                            "its own; the cached layer goes stale"))
    return hits


def _tools(category: str) -> ImageCheck:
    def check(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
        if category not in policy.absent or facts.filesystem is None:
            return []
        paths = [p for c, p in facts.filesystem.tools if c == category]
        if not paths:
            return []
        shown = ", ".join(paths[:8]) + (f" and {len(paths) - 8} more" if len(paths) > 8 else "")
        return [Hit(f"{category} present although the policy says the app needs none: "
                    f"{shown}")]
    return check


def _size(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    size_mb = facts.size / (1 << 20)
    if size_mb > policy.max_size_mb:
        return [Hit(f"image is {size_mb:.0f} MiB, above {policy.max_size_mb} MiB")]
    return []


def _layers(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    if facts.layers > policy.max_layers:
        return [Hit(f"image has {facts.layers} layers, above {policy.max_layers}")]
    return []


# Docker Hub's aliases; an image name without a registry part is on Docker Hub.
DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def normalised_name(image: str) -> str:
    """`nginx` -> `docker.io/library/nginx`; `reg:5000/a/b:1` -> `reg:5000/a/b` (docker's rules)."""
    name = image_parts(image)[0]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry = DOCKER_HUB if first.lower() in _HUB_ALIASES else first.lower()
        path = rest
    else:
        registry, path = DOCKER_HUB, name
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def registry_of(image: str) -> str:
    return normalised_name(image).split("/", 1)[0]


def registry_allowed(image: str, allowed: tuple[str, ...]) -> bool:
    """True when the list is empty, or the image's normalised name is under an entry."""
    if not allowed:
        return True
    full = normalised_name(image)
    for entry in allowed:
        prefix = entry.lower().rstrip("/")
        head, _, rest = prefix.partition("/")
        if head in _HUB_ALIASES:
            prefix = DOCKER_HUB + (f"/{rest}" if rest else "")
        if full == prefix or full.startswith(prefix + "/"):
            return True
    return False


def _registry(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    if registry_allowed(facts.reference, policy.registries):
        return []
    return [Hit(f"image {facts.reference!r} comes from {registry_of(facts.reference)}, "
                f"not from an allowed registry ({', '.join(policy.registries)})")]


def _digest_required(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    if policy.digest != "require" or image_parts(facts.reference)[2]:
        return []
    return [Hit(f"image {facts.reference!r} is not pinned by digest ([policy] digest = "
                "\"require\")", severity=Severity.HIGH)]


def _tag(facts: ImageFacts, policy: ImagePolicy) -> list[Hit]:
    from saferun.policy.rules import image_tag_problem

    if re.fullmatch(r"(?:sha256:)?[0-9a-f]{12,64}", facts.reference):
        return []  # an image id: pinned
    problem = image_tag_problem(facts.reference)
    return [Hit(problem)] if problem else []


# --- the table ------------------------------------------------------------------------------

S = Severity


@dataclass(frozen=True)
class ImageRule:
    """A Rule (metadata shared with the container rules) and its check over ImageFacts."""

    rule: Rule
    check: ImageCheck
    needs_filesystem: bool = False


def _rule(rule_id: str, title: str, severity: Severity, weight: int, cis: tuple[str, ...],
          rationale: str, fix: str, check: ImageCheck, *, filesystem: bool = False,
          refusal: bool = False) -> ImageRule:
    return ImageRule(Rule(rule_id, title, severity, weight, cis, rationale, fix, None,
                          refusal=refusal, doc=IMAGES_DOC), check, filesystem)


IMAGE_RULES_TABLE: tuple[ImageRule, ...] = (
    _rule("image-registry", "Image from a registry not on the allowlist", S.HIGH, 30, ("4.2",),
          "Images from an unreviewed registry bypass whatever vetting the team's registries "
          "apply (scanning, signing, provenance). saferun run refuses them when [policy] "
          "registries is set.",
          "pull the image through an allowed registry, or add its registry to [policy] "
          "registries (manifest or team policy file)", _registry, refusal=True),
    # image-tag-latest and image-digest are container rules too (saferun.policy.rules); the image
    # table reuses them by id, see REUSED below.
    _rule("image-user-root", "Image runs as root", S.MEDIUM, 30, ("4.1",),
          "An image without a non-root USER starts its processes as root wherever it is run "
          "without an explicit --user; a compromise then starts as root in the container.",
          "add `USER 1000` (or a named user created in the image) after the steps that need "
          "root", _user),
    _rule("image-healthcheck", "Image has no HEALTHCHECK", S.LOW, 5, ("4.6",),
          "Without a HEALTHCHECK a hung or hijacked service still looks 'running' to the "
          "engine and to orchestration.",
          "add a HEALTHCHECK instruction (or [healthcheck] in the saferun manifest)",
          _healthcheck),
    _rule("image-setuid", "Setuid or setgid files in the image", S.MEDIUM, 20, ("4.8",),
          "Setuid and setgid binaries are the classic way from an unprivileged process to "
          "root. saferun run sets no-new-privileges, which neutralises them, but every other "
          "runtime of the image does not.",
          "remove the files or their bits in the Dockerfile: `RUN find / -xdev -perm /6000 "
          "-type f -exec chmod a-s {} +`", _setuid, filesystem=True),
    _rule("image-secret-config", "Secret in the image's ENV, labels or history", S.HIGH, 40,
          ("4.10",),
          "ENV values, labels and every build step's command line (including build args) are "
          "stored in the image and shown by `docker inspect` and `docker history` to anyone "
          "who can pull it.",
          "pass secrets at run time (env_files, a secrets mount) or with BuildKit's `RUN "
          "--mount=type=secret`; rotate any credential that was in a pushed image",
          _config_secrets),
    _rule("image-secret-file", "Credential file in the image", S.HIGH, 40, ("4.10",),
          "Private keys and credential files left in a layer are readable by anyone who can "
          "pull the image, even if a later layer deletes them (then they are gone from the "
          "merged view, which is what this rule checks; `docker history` still has the layer).",
          "do not COPY credentials; use BuildKit secrets or mount them at run time, and "
          "rotate the exposed credential", _file_secrets, filesystem=True),
    _rule("image-update-alone", "Package index updated in a step of its own", S.LOW, 3,
          ("4.7",),
          "`RUN apt-get update` alone is cached as a layer; later builds install from the "
          "stale index and miss security updates.",
          "update and install in one step: `RUN apt-get update && apt-get install -y ...`",
          _update_alone),
    _rule("image-shell", "Shell in an image that needs none", S.LOW, 5, ("4.3",),
          "A shell is what an intruder needs first; an app that runs without one is safer "
          "in a distroless or scratch image. Checked only when [policy.image] absent lists "
          "\"shell\".",
          "build FROM a distroless or scratch base, or remove the shell", _tools("shell"),
          filesystem=True),
    _rule("image-package-manager", "Package manager in an image that needs none", S.LOW, 5,
          ("4.3",),
          "A package manager lets an intruder install tools; images should contain only what "
          "the app needs. Checked only when [policy.image] absent lists \"package-manager\".",
          "use a multi-stage build and copy only the app into the final stage",
          _tools("package-manager"), filesystem=True),
    _rule("image-compiler", "Compiler in an image that needs none", S.LOW, 5, ("4.3",),
          "A compiler lets an intruder build exploits in place. Checked only when "
          "[policy.image] absent lists \"compiler\".",
          "build in one stage and copy the artefact into a slim final stage",
          _tools("compiler"), filesystem=True),
    _rule("image-size", "Large image", S.LOW, 3, ("4.3",),
          "Every file in an image is attack surface and patching work; size above the "
          "policy's limit usually means build tools or caches were left in.",
          "use a slimmer base and a multi-stage build; raise [policy.image] max_size_mb if "
          "the size is needed", _size),
    _rule("image-layers", "Many layers", S.INFO, 2, ("4.3",),
          "Many layers usually mean many unreviewed steps, and files deleted in a later "
          "layer still ship in an earlier one.",
          "combine RUN steps; raise [policy.image] max_layers if needed", _layers),
    _rule("image-scan", "Vulnerabilities at or above the policy's severity", S.HIGH, 30,
          ("4.4",),
          "Known vulnerabilities in the image's packages are the easiest way in. saferun run "
          "refuses the image when [policy] scan is set and the scanner reports any at or above "
          "scan.fail_on, or when a required scanner is missing.",
          "rebuild on a patched base and update the packages listed; see docs/images.md",
          lambda facts, policy: [], refusal=True),
    _rule("image-signature", "Image signature not verified", S.HIGH, 30, ("4.5",),
          "An unsigned image (or one whose signature is not checked) may not be what the "
          "publisher built. saferun run refuses it when [policy] signature is required and "
          "the verification fails or its tool is missing.",
          "sign the image (cosign sign, or docker trust sign) and configure [policy] "
          "signature with the key or identity", lambda facts, policy: [], refusal=True),
)

# Container rules that judge the image reference: same ids, same texts (saferun.policy.rules).
REUSED: dict[str, ImageCheck] = {"image-tag-latest": _tag, "image-digest": _digest_required}

IMAGE_RULES: dict[str, Rule] = {r.rule.id: r.rule for r in IMAGE_RULES_TABLE}
# The two gates are decided by policy.scan_gate and policy.signature_gate, not by a check.
GATE_RULES = frozenset({"image-scan", "image-signature"})


def evaluate_image(facts: ImageFacts, policy: ImagePolicy | None = None,
                   ) -> tuple[RuleResult, ...]:
    """Every image rule (and the reused reference rules) applied to the facts, in table order.

    Filesystem rules are left out when the filesystem was not read; the gate rules are
    added by the caller from the gates' decisions.
    """
    from saferun.policy.rules import RULES

    policy = policy or ImagePolicy()
    results = []
    for image_rule in IMAGE_RULES_TABLE:
        if image_rule.rule.id in GATE_RULES:
            continue
        if image_rule.needs_filesystem and facts.filesystem is None:
            continue
        results.append(RuleResult(image_rule.rule, tuple(image_rule.check(facts, policy))))
        if image_rule.rule.id == "image-registry":
            for rule_id, check in REUSED.items():
                results.append(RuleResult(RULES[rule_id], tuple(check(facts, policy))))
    return tuple(results)


def facts_from_config(reference: str, inspect: dict[str, object],
                      history: list[dict[str, object]] | None = None,
                      filesystem: FilesystemSummary | None = None) -> ImageFacts:
    """`GET /images/{name}/json` (+ /history) -> ImageFacts. Pure: the edge fetched them."""
    config = inspect.get("Config") or {}
    assert isinstance(config, dict)
    env = []
    for item in config.get("Env") or []:
        name, _, value = str(item).partition("=")
        env.append((name, value))
    labels = tuple(sorted((str(k), str(v)) for k, v in (config.get("Labels") or {}).items()))
    health = config.get("Healthcheck") or {}
    test = tuple(str(t) for t in (health.get("Test") or [])) if isinstance(health, dict) else ()
    rootfs = inspect.get("RootFS") or {}
    layers = len(rootfs.get("Layers") or []) if isinstance(rootfs, dict) else 0
    steps = tuple(HistoryEntry(str(h.get("CreatedBy") or h.get("created_by") or ""),
                               bool(h.get("empty_layer")))
                  for h in reversed(history or []))  # the API lists newest first
    size = inspect.get("Size")
    return ImageFacts(
        reference=reference, image_id=str(inspect.get("Id") or ""),
        user=str(config.get("User") or ""), env=tuple(env), labels=labels,
        healthcheck=test or None,
        exposed_ports=tuple(sorted(str(p) for p in (config.get("ExposedPorts") or {}))),
        history=steps, size=int(size) if isinstance(size, int) else 0, layers=layers,
        filesystem=filesystem)
