"""Generated AppArmor profiles compile with the real `apparmor_parser -Q -K -T`.

The kernel on the development machines has no AppArmor, so profiles cannot be loaded in
tests; compiling them is what the parser can prove without a kernel. Skipped where the
parser is missing, except in CI (CI=true), where a missing parser fails the run.
"""

from __future__ import annotations

import os
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saferun.data import data_dir
from saferun.engine.apparmor_parser import compile_check, parser_available
from saferun.errors import ProfileError
from saferun.inputs.loader import load_manifest
from saferun.model.capabilities import CAPABILITY_BITS
from saferun.model.manifest import (
    BindOrVolumeMount,
    Manifest,
    TmpfsMount,
)
from saferun.model.strict import ValidationError, updated
from saferun.profiles.apparmor import (
    NETWORK_RULES,
    decide_apparmor,
    profile_name_for,
    render_apparmor,
)


@pytest.fixture(scope="module", autouse=True)
def _parser() -> None:
    if not parser_available():
        if os.environ.get("CI") == "true":
            pytest.fail("apparmor_parser is required in CI (apt-get install apparmor)")
        pytest.skip("apparmor_parser is not installed")


def compiled(m: Manifest) -> str:
    text = render_apparmor(m, profile_name=profile_name_for(m))
    compile_check(text)
    return text


def test_the_check_can_fail() -> None:
    """Guards the tests below: a broken profile must not pass as compiled."""
    good = compiled(Manifest.from_data({"app": {"name": "a", "image": "busybox"}}))
    with pytest.raises(ProfileError, match="apparmor_parser rejected"):
        compile_check(good.replace("deny mount,", 'deny mount "/x,'))
    with pytest.raises(ProfileError, match="no_such_cap"):
        compile_check(good.replace("deny mount,", "capability no_such_cap,"))


PRESETS = sorted(data_dir("profiles").glob("*.toml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_compiles(preset: Path) -> None:
    compiled(load_manifest(preset))


REASON = "needed by this test manifest"
VARIED: dict[str, dict[str, Any]] = {
    "minimal": {},
    "web-server": {
        "capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID"]},
        "filesystem": {"tmpfs": [{"target": "/var/cache/nginx"}, {"target": "/run"}]},
        "apparmor": {"network": ["tcp"], "executables": ["/usr/sbin/nginx"]},
    },
    "database-volume": {
        "filesystem": {"tmpfs": [{"target": "/tmp", "size": "128m"}, {"target": "/run/postgresql"}],
                       "mounts": [{"type": "volume", "source": "pgdata",
                                   "target": "/var/lib/postgresql/data", "read_only": False},
                                  {"type": "bind", "source": "./init",
                                   "target": "/docker-entrypoint-initdb.d"}]},
        "apparmor": {"network": ["tcp", "udp"], "enforcement": "required"},
    },
    "no-network": {"apparmor": {"network": []}, "network": {"mode": "none"}},
    "icmp-and-every-capability": {
        "capabilities": {"add": sorted(CAPABILITY_BITS)},
        "apparmor": {"network": ["icmp", "udp", "tcp"]},
        "allow": {"cap-not-allowed": REASON, "cap-add-all": REASON},
    },
    "writable-root": {"filesystem": {"read_only": False},
                      "exceptions": {"writable_root": REASON}},
    "odd-but-legal-paths": {
        "filesystem": {"tmpfs": [{"target": "/srv/@cache+x/-y_z.1/"}]},
        "apparmor": {"executables": ["/opt/app-1.2/bin/run+me", "/usr/bin/@x"]},
    },
    "root-with-exception": {"app": {"name": "r00t.app-1", "image": "busybox", "user": "0:0"},
                            "exceptions": {"run_as_root": REASON}},
    "named-profile": {"apparmor": {"mode": "profile", "profile": "my.profile-1"}},
}


@pytest.mark.parametrize("name", sorted(VARIED))
def test_varied_manifests_compile(name: str) -> None:
    document = {"app": {"name": name, "image": "busybox:1.36"}, **VARIED[name]}
    m = Manifest.from_data(document)
    assert_only_expected_rules(compiled(m), m, profile_name_for(m))
    decision = decide_apparmor(m, host_has_apparmor=True)
    if decision.to_load is not None:
        compile_check(decision.to_load[1])


# --- property-based: random values are rejected or compile; nothing else -------------------

SAFE = string.ascii_letters + string.digits + "_.@+-"
HOSTILE = SAFE + '/"{}[]*?^,#$=() \t\n\\!<>\'`;:~%&|\x00\x7f' + "é"
# Fragments that would break out of a rule if they got through, some forming valid rules.
BREAKERS = st.sampled_from(['"', "\n", ",", "{", "}", "*", "**", " ", "#", "..", "@{HOME}", "\\",
                            '" rwx,\n  "/**', ", /** rwlkmix,", "\n  capability sys_admin,\n#",
                            "} profile evil {", "\x00"])
wild = st.one_of(BREAKERS, st.text(alphabet=HOSTILE, min_size=1, max_size=6))
segments = st.text(alphabet=SAFE, min_size=1, max_size=8)
plausible_paths = st.lists(segments, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))
hostile_paths = st.one_of(
    st.text(alphabet=HOSTILE, max_size=24),
    st.tuples(plausible_paths, wild, plausible_paths).map("".join),
    st.tuples(plausible_paths, wild).map("".join),
    st.tuples(plausible_paths, st.sampled_from(["\n", "/\n", "\r\n"])).map("".join),
    st.sampled_from(["/..", "/a/../b", "/./a", "//a", "/", "/proc/sys/x", "/sys/x"]),
)
# Mostly plausible values, so that enough examples get past validation to be compiled.
paths = st.one_of(plausible_paths, plausible_paths, plausible_paths, hostile_paths)
valid_names = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True)
# A value with a final newline passes a regex that ends in `$` (a classic): try it often.
trailing_newline = st.sampled_from(["\n", "\n\n", "\r\n"])
hostile_names = st.one_of(st.text(alphabet=HOSTILE, max_size=16),
                          st.tuples(valid_names, wild, valid_names).map("".join),
                          st.tuples(valid_names, wild).map("".join),
                          st.tuples(valid_names, trailing_newline).map("".join))
names = st.one_of(valid_names, valid_names, hostile_names)
word_stems = st.sampled_from(["tcp", "chown", "CAP_CHOWN"])
hostile_words = st.one_of(st.text(alphabet=HOSTILE, max_size=12),
                          st.tuples(word_stems, wild).map("".join))
capabilities = st.one_of(st.sampled_from(sorted(CAPABILITY_BITS)),
                         st.sampled_from(sorted(c[4:].lower() for c in CAPABILITY_BITS)),
                         hostile_words)
families = st.sampled_from(["tcp", "udp", "icmp"])
network_words = st.one_of(families, families, families, hostile_words)


@st.composite
def manifest_documents(draw: st.DrawFn) -> dict[str, Any]:
    # Half the documents use only plausible values, so that plenty reach the compiler; the
    # other half mix hostile values into every field.
    clean = draw(st.booleans())

    def pick(plausible: st.SearchStrategy[str], mixed: st.SearchStrategy[str]) -> str:
        return draw(plausible if clean else mixed)

    def picks(plausible: st.SearchStrategy[str], mixed: st.SearchStrategy[str],
              max_size: int) -> list[str]:
        return draw(st.lists(plausible if clean else mixed, max_size=max_size))

    read_only = draw(st.booleans())
    cap_names = st.sampled_from(sorted(CAPABILITY_BITS))
    volume_targets = picks(plausible_paths, paths, 2)
    executables = None if draw(st.booleans()) else picks(plausible_paths, paths, 3)
    return {
        "app": {"name": pick(valid_names, names), "image": "busybox"},
        "capabilities": {"add": picks(cap_names, capabilities, 4)},
        "filesystem": {
            "read_only": read_only,
            "tmpfs": [{"target": t} for t in picks(plausible_paths, paths, 3)],
            "mounts": [{"type": "volume", "source": f"vol{i}", "target": t,
                        "read_only": draw(st.booleans())} for i, t in enumerate(volume_targets)],
        },
        "apparmor": {"network": picks(families, network_words, 4), "executables": executables},
        "exceptions": {} if read_only else {"writable_root": REASON},
        # Capabilities outside Docker's default set need a reasoned allow (rule cap-not-allowed).
        "allow": {"cap-not-allowed": REASON, "cap-add-all": REASON},
    }


SAFE_PATH = r'"(/[A-Za-z0-9_.@+-]+(?:/[A-Za-z0-9_.@+-]+)*)(/\*\*)?"'
VALUE_RULES = [re.compile(p) for p in (
    SAFE_PATH + r" (?:rwkl?|ix),", r'"/\*\*" r(?:wkl)?m(?:ix)?,',
    r"network inet6? (?:tcp|udp|icmp),", r"capability [a-z_]+,",
)]


def template_lines(profile_name: str) -> set[str]:
    """The lines every profile has, whatever the manifest says."""
    skeleton = Manifest.from_data({"app": {"name": "a", "image": "b"},
                                        "filesystem": {"tmpfs": []}, "apparmor": {"network": []}})
    text = render_apparmor(skeleton, profile_name=profile_name)
    return {line.strip() for line in text.splitlines()}


def assert_only_expected_rules(text: str, m: Manifest, profile_name: str) -> None:
    """No value escaped its rule: every line is template text or one value-shaped rule, and
    every path in a rule is one the manifest gave. Compiling alone cannot show this: an
    injected `, /** rwx` or a newline with a rule after it is valid AppArmor."""
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", profile_name), profile_name
    fs, section = m.filesystem, m.apparmor
    given_paths = {p.rstrip("/") for p in [*(t.target for t in fs.tmpfs),
                                            *(v.target for v in fs.mounts if not v.read_only),
                                            *(section.executables or [])]}
    expected = template_lines(profile_name)
    for line in (raw.strip() for raw in text.splitlines()):
        if line in expected or line.startswith("#"):  # a value in a comment stays a comment
            continue
        matches = [rule.fullmatch(line) for rule in VALUE_RULES]
        assert any(matches), f"unexpected line in profile: {line!r}"
        if matches[0] is not None:
            assert matches[0].group(1) in given_paths, line
    lines = [raw.strip() for raw in text.splitlines()]
    assert set(section.network) <= set(NETWORK_RULES), section.network
    wanted_network = [rule for family, rules in NETWORK_RULES.items()
                      if family in section.network for rule in rules]
    assert [ln for ln in lines if ln.startswith("network inet")] == wanted_network
    assert set(m.capabilities.add) <= set(CAPABILITY_BITS), m.capabilities.add
    assert sorted(ln for ln in lines if ln.startswith("capability ")) == sorted(
        f"capability {cap[4:].lower()}," for cap in set(m.capabilities.add))
    path_rules = [ln for ln in lines if ln.startswith('"')]
    writable = len(fs.tmpfs) + sum(1 for v in fs.mounts if not v.read_only)
    assert len(path_rules) == 1 + 2 * writable + len(set(section.executables or [])), path_rules


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_random_manifest_values_are_rejected_or_compile() -> None:
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(manifest_documents())
    def check(document: dict[str, Any]) -> None:
        try:
            m = Manifest.from_data(document)
            text = render_apparmor(m, profile_name=profile_name_for(m))
        except (ValidationError, ProfileError):
            outcomes["rejected"] += 1
            return
        compile_check(text)  # any other exception, or a parser error, fails the test
        assert_only_expected_rules(text, m, profile_name_for(m))
        outcomes["compiled"] += 1

    check()
    # Both outcomes must really happen, or the property would hold vacuously.
    assert outcomes["compiled"] >= 30 and outcomes["rejected"] >= 30, outcomes


UNVALIDATED_FIELDS = ("name", "profile_name", "caps", "network", "tmpfs", "volumes", "executables")


@st.composite
def unvalidated_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """Plausible values everywhere except (usually) one field, which gets a hostile value:
    one bad value per example is what finds a gap in one check of the gate."""
    hostile = draw(st.sampled_from([None, *UNVALIDATED_FIELDS]))
    cap_names = st.sampled_from(sorted(CAPABILITY_BITS))

    def one(field: str, clean: st.SearchStrategy[str], dirty: st.SearchStrategy[str]) -> str:
        return draw(dirty if field == hostile else clean)

    def many(field: str, clean: st.SearchStrategy[str], dirty: st.SearchStrategy[str],
             max_size: int = 3) -> list[str]:
        values = draw(st.lists(clean, max_size=max_size))
        if field == hostile:
            values.insert(draw(st.integers(0, len(values))), draw(dirty))
        return values

    return {
        "name": one("name", valid_names, hostile_names),
        "profile_name": one("profile_name", valid_names, hostile_names),
        "caps": many("caps", cap_names, hostile_words),
        "network": many("network", families, hostile_words),
        "tmpfs": many("tmpfs", plausible_paths, hostile_paths),
        "volumes": many("volumes", plausible_paths, hostile_paths, 2),
        "executables": (None if hostile != "executables" and draw(st.booleans())
                        else many("executables", plausible_paths, hostile_paths)),
    }


BASE = Manifest.from_data({"app": {"name": "a", "image": "x"}})


def test_renderer_alone_rejects_or_compiles_unvalidated_values() -> None:
    """The manifest model is bypassed (`updated` does not validate): `_aa_value` is the only
    gate."""
    outcomes: Counter[str] = Counter()

    @settings(SETTINGS, max_examples=600)
    @given(unvalidated_inputs())
    def check(values: dict[str, Any]) -> None:
        m = updated(
            BASE,
            app=updated(BASE.app, name=values["name"]),
            capabilities=updated(BASE.capabilities, add=values["caps"]),
            filesystem=updated(
                BASE.filesystem,
                tmpfs=[TmpfsMount(target=t) for t in values["tmpfs"]],
                mounts=[BindOrVolumeMount(type="volume", source="vol", target=t, read_only=False)
                        for t in values["volumes"]]),
            apparmor=updated(BASE.apparmor, network=values["network"],
                             executables=values["executables"]),
        )
        try:
            text = render_apparmor(m, profile_name=values["profile_name"])
        except ProfileError:
            outcomes["rejected"] += 1
            return
        compile_check(text)
        assert_only_expected_rules(text, m, values["profile_name"])
        outcomes["compiled"] += 1

    check()
    assert outcomes["compiled"] >= 30 and outcomes["rejected"] >= 100, outcomes
