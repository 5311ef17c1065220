"""Configuration: file, then command line on top; validated against the catalogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pcapcheck.catalogue import load_catalogue
from pcapcheck.config import Config, load_config
from pcapcheck.errors import ConfigError, PcapcheckError
from pcapcheck.findings import Severity


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_any_file(in_tmp):
    config = load_config()
    assert (config.profile, config.fail_on, config.disabled, config.source) == ("linux", "error", set(), None)


def test_profile_values_are_the_default_parameters(catalogue):
    config = load_config(profile="windows")
    assert config.parameters(catalogue["short-time-wait"]) == {"time_wait": 120.0}
    assert load_config(profile="rfc9293").parameters(catalogue["short-time-wait"]) == {"time_wait": 240.0}


def test_param_override_wins_over_the_profile(catalogue):
    config = load_config(params=["short-time-wait.time_wait=30"])
    config.validate(catalogue)
    assert config.parameters(catalogue["short-time-wait"]) == {"time_wait": 30}


def test_numbers_are_parsed(catalogue):
    config = load_config(params=["close-wait-leak.threshold=2.5", "data-after-rst.grace=1"])
    assert config.params == {"close-wait-leak": {"threshold": 2.5}, "data-after-rst": {"grace": 1}}


def test_windows_time_wait_outside_30_to_300_is_rejected(catalogue):
    config = load_config(profile="windows", params=["short-time-wait.time_wait=10"])
    with pytest.raises(ConfigError, match="30-300"):
        config.validate(catalogue)


def test_windows_time_wait_inside_the_range_is_accepted(catalogue):
    load_config(profile="windows", params=["short-time-wait.time_wait=30"]).validate(catalogue)


def test_non_number_parameter_is_rejected(catalogue):
    with pytest.raises(ConfigError, match="must be a number"):
        load_config(params=["close-wait-leak.threshold=soon"]).validate(catalogue)


def test_negative_parameter_is_rejected(catalogue):
    with pytest.raises(ConfigError, match="negative"):
        load_config(params=["close-wait-leak.threshold=-1"]).validate(catalogue)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
def test_nan_or_infinite_parameter_is_rejected(catalogue, value):
    # NaN compares false with any duration: close-wait-leak would fire on every connection.
    with pytest.raises(ConfigError, match="must be a finite number"):
        load_config(params=[f"close-wait-leak.threshold={value}"]).validate(catalogue)


def test_nan_parameter_in_the_config_file_is_rejected(in_tmp, catalogue):
    (in_tmp / "pcapcheck.toml").write_text("[parameters.close-wait-leak]\nthreshold = nan\n")
    with pytest.raises(ConfigError, match="close-wait-leak.threshold must be a finite number, not nan"):
        load_config().validate(catalogue)


def test_cli_nan_param_exits_2_with_one_line():
    sample = Path(__file__).resolve().parent.parent / "samples" / "graceful-client-close.pcap"
    run = subprocess.run(
        [sys.executable, "-m", "pcapcheck", "analyze", "-q", "--param", "close-wait-leak.threshold=nan", str(sample)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "pcapcheck: error: parameter close-wait-leak.threshold must be a finite number, not nan"
    ]


def test_unknown_parameter_is_rejected(catalogue):
    with pytest.raises(ConfigError, match="no parameter 'colour'"):
        load_config(params=["close-wait-leak.colour=3"]).validate(catalogue)


def test_unknown_rule_is_rejected(catalogue):
    configs = (load_config(disable=["nope"]), load_config(severity=["nope=info"]), load_config(params=["nope.x=1"]))
    for config in configs:
        with pytest.raises(ConfigError, match="unknown rule 'nope'"):
            config.validate(catalogue)


def test_malformed_command_line_items_are_rejected():
    for kwargs in ({"severity": ["abortive-close"]}, {"params": ["abortive-close=3"]}, {"severity": ["x=loud"]}):
        with pytest.raises(ConfigError):
            load_config(**kwargs)


def test_unknown_profile_and_fail_on_are_rejected():
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config(profile="bsd")
    with pytest.raises(ConfigError, match="fail-on"):
        load_config(fail_on="sometimes")


def test_severity_override_applies(catalogue):
    config = load_config(severity=["abortive-close=error"])
    assert config.severity_of(catalogue["abortive-close"]) is Severity.ERROR
    assert config.severity_of(catalogue["data-after-rst"]) is Severity.WARNING


def test_pcapcheck_toml_in_the_current_directory_is_read(in_tmp, catalogue):
    (in_tmp / "pcapcheck.toml").write_text(
        'profile = "rfc9293"\nfail-on = "warning"\ndisable = ["capture-gap"]\nrules = ["my-rules"]\n'
        '[severity]\nabortive-close = "error"\n[parameters.close-wait-leak]\nthreshold = 5\n',
        encoding="utf-8",
    )
    config = load_config()
    config.validate(catalogue)
    assert config.profile == "rfc9293" and config.fail_on == "warning"
    assert config.disabled == {"capture-gap"}
    assert config.severities == {"abortive-close": Severity.ERROR}
    assert config.params == {"close-wait-leak": {"threshold": 5}}
    assert config.extra_rule_dirs == [str(in_tmp / "my-rules")]


def test_pyproject_tool_section_is_read(in_tmp):
    (in_tmp / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.pcapcheck]\nprofile = "windows"\n')
    assert load_config().profile == "windows"


def test_pyproject_without_the_section_configures_nothing(in_tmp):
    (in_tmp / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config().source is None


def test_command_line_wins_over_the_file(in_tmp):
    (in_tmp / "pcapcheck.toml").write_text('profile = "rfc9293"\nfail-on = "warning"\n')
    config = load_config(profile="windows", fail_on="never", disable=["capture-gap"])
    assert (config.profile, config.fail_on, config.disabled) == ("windows", "never", {"capture-gap"})


def test_explicit_config_file_is_used(tmp_path):
    path = tmp_path / "ci.toml"
    path.write_text('profile = "windows"\n')
    assert load_config(path).profile == "windows"


def test_unknown_key_in_the_file_names_file_and_key(in_tmp):
    (in_tmp / "pcapcheck.toml").write_text('profil = "linux"\n')
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "pcapcheck.toml" in str(caught.value) and "'profil'" in str(caught.value)


def test_missing_or_broken_config_file_is_one_clear_error(tmp_path):
    with pytest.raises(PcapcheckError, match="not found"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("profile = \n")
    with pytest.raises(PcapcheckError, match="not valid TOML"):
        load_config(bad)


def test_profile_for_run_is_the_named_profile():
    assert Config(profile="windows").profile_for_run().time_wait == 120.0


def test_cli_bad_param_exits_2_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from pcapcheck.cli import app

    capture = tmp_path / "x.pcap"
    capture.write_bytes(b"")
    outcome = CliRunner().invoke(app, ["analyze", "-q", "--param", "short-time-wait.speed=3", str(capture)])
    assert outcome.exit_code == 2
    assert "no parameter 'speed'" in outcome.output
