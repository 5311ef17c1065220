"""Every sample's metadata is complete and consistent with its capture, before any analysis runs.

The expectations in samples/*.toml are the project's golden answers; a typo there (a frame that
does not exist, a state the RFC does not name, a rule without a rule file) would make an analyser
look wrong, or right, for the wrong reason.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import tomllib

import pytest

from tests.samples_support import (
    CLOSES,
    CONNECTION_KEYS,
    ENDPOINTS,
    FINDING_KEYS,
    PROFILES,
    REQUIRED_SAMPLE_KEYS,
    RULES_DIR,
    SAMPLES_DIR,
    SOURCES,
    STATES,
    VANTAGES,
    count_frames,
    load_sample,
    orphan_captures,
    sample_tomls,
)

TOMLS = sample_tomls()
IDS = [p.stem for p in TOMLS]


def _data(path):
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def test_samples_exist():
    assert TOMLS, f"no sample metadata in {SAMPLES_DIR}"


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_sample_section_has_required_keys_and_allowed_values(path):
    sample = _data(path).get("sample")
    assert isinstance(sample, dict), f"{path.name}: no [sample] table"
    missing = [k for k in REQUIRED_SAMPLE_KEYS if k not in sample]
    assert not missing, f"{path.name}: [sample] lacks {', '.join(missing)}"
    assert sample["name"] == path.stem, f"{path.name}: name '{sample['name']}' is not the file's name"
    assert sample["source"] in SOURCES, f"{path.name}: source '{sample['source']}' not in {SOURCES}"
    assert sample["vantage"] in VANTAGES, f"{path.name}: vantage '{sample['vantage']}' not in {VANTAGES}"
    assert isinstance(sample["description"], str) and sample["description"].strip(), f"{path.name}: empty description"
    capture = sample["capture"]
    assert isinstance(capture, str) or (isinstance(capture, list) and capture and all(isinstance(c, str) for c in capture)), (
        f"{path.name}: capture must be a file name or a list of them"
    )
    for key, value in sample.get("sysctl", {}).items():
        role, _, name = key.partition(":")
        assert role and name and isinstance(value, str), f"{path.name}: sysctl '{key}' must be \"role:key\" = \"value\""
    for snap in sample.get("ss", []):
        assert {"moment", "namespace", "output"} <= set(snap), f"{path.name}: [[sample.ss]] needs moment, namespace, output"


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_analysis_section_names_a_known_profile(path):
    analysis = _data(path).get("analysis", {})
    assert set(analysis) <= {"profile", "params"}, f"{path.name}: unknown [analysis] keys {set(analysis) - {'profile', 'params'}}"
    assert analysis.get("profile", "linux") in PROFILES, f"{path.name}: unknown profile {analysis.get('profile')}"
    for key in analysis.get("params", {}):
        rule, _, name = key.partition(".")
        assert rule and name, f"{path.name}: parameter '{key}' must be written \"rule.name\""


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_capture_files_exist(path):
    sample = load_sample(path)
    assert sample.captures, f"{path.name}: names no capture file"
    missing = [str(p) for p in sample.captures if not p.is_file()]
    assert not missing, f"{path.name}: capture file(s) missing: {', '.join(missing)}"


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_expected_connections_are_complete_and_numbered_in_order(path):
    connections = _data(path).get("expect", {}).get("connections", [])
    assert connections, f"{path.name}: a capture of TCP samples has at least one connection"
    for i, conn in enumerate(connections, start=1):
        missing = [k for k in CONNECTION_KEYS if k not in conn]
        assert not missing, f"{path.name}: connection {i} lacks {', '.join(missing)}"
        assert conn["id"] == i, f"{path.name}: connection ids must run 1, 2, ... in order (got {conn['id']} at {i})"
        assert conn["incarnation"] >= 1, f"{path.name}: connection {i}: incarnation counts from 1"
        for side in ("client_final_state", "server_final_state"):
            assert conn[side] in STATES, f"{path.name}: connection {i}: {side} '{conn[side]}' is not an RFC 9293 state name"
        assert conn["close"] in CLOSES, f"{path.name}: connection {i}: close '{conn['close']}' not in {CLOSES}"
        for end in ("client", "server"):
            address, _, port = conn[end].rpartition(":")
            assert address and port.isdigit(), f"{path.name}: connection {i}: {end} '{conn[end]}' is not addr:port"
            assert ":" not in address or (address.startswith("[") and address.endswith("]")), (
                f"{path.name}: connection {i}: IPv6 is written [addr]:port"
            )


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_expected_findings_are_well_formed(path):
    data = _data(path)
    n_connections = len(data.get("expect", {}).get("connections", []))
    for i, finding in enumerate(data.get("expect", {}).get("findings", []), start=1):
        missing = [k for k in FINDING_KEYS if k not in finding]
        assert not missing, f"{path.name}: finding {i} lacks {', '.join(missing)}"
        assert finding["endpoint"] in ENDPOINTS, f"{path.name}: finding {i}: endpoint '{finding['endpoint']}' not in {ENDPOINTS}"
        assert 1 <= finding["connection"] <= n_connections, f"{path.name}: finding {i} names connection {finding['connection']}"
        assert isinstance(finding["frame"], int) and finding["frame"] >= 1, f"{path.name}: finding {i}: frame counts from 1"


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_expected_frames_exist_in_the_capture(path):
    sample = load_sample(path)
    frames = count_frames(sample.captures)
    beyond = [f.line() for f in sample.findings if f.frame > frames]
    assert not beyond, f"{path.name}: the capture has {frames} frames, but: {'; '.join(beyond)}"


@pytest.mark.parametrize("path", TOMLS, ids=IDS)
def test_every_expected_rule_has_a_rule_file(path):
    if not any(RULES_DIR.glob("*.toml")):
        pytest.skip("rules/ is still empty")
    sample = load_sample(path)
    without = sorted({f.rule for f in sample.findings if not (RULES_DIR / f"{f.rule}.toml").is_file()})
    assert not without, f"{path.name}: no rules/<id>.toml for {', '.join(without)}"


def test_every_capture_in_samples_has_metadata():
    orphans = orphan_captures()
    assert not orphans, f"captures without a samples/<name>.toml: {', '.join(p.name for p in orphans)}"


@functools.cache
def _crafted_module():
    """samples/crafted.py as a module (it imports scapy only inside its peers: cheap to load)."""
    spec = importlib.util.spec_from_file_location("crafted_samples", SAMPLES_DIR / "crafted.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


CRAFTED = [p for p in TOMLS if _data(p).get("sample", {}).get("source") == "crafted"]


@pytest.mark.parametrize("path", CRAFTED, ids=[p.stem for p in CRAFTED])
def test_crafted_capture_has_the_shape_its_expectations_were_written_for(path):
    """samples/crafted.py declares every frame (direction and flags) of each crafted capture; the
    expectations in the toml were read from a capture of that shape, so the file must still have it."""
    crafted = _crafted_module()
    scenario = next((s for s in crafted._LIST if s.name == path.stem), None)
    assert scenario is not None, f"{path.name}: source is 'crafted' but samples/crafted.py has no such scenario"
    sample = load_sample(path)
    shape = crafted.capture_shape(sample.captures[0], scenario.client_port)
    assert shape == scenario.shape, f"{path.name}: capture shape {shape} != declared {scenario.shape}"
