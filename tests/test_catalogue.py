"""The rule catalogue: rules/*.toml loaded and validated; `pcapcheck rules` and `pcapcheck explain`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcapcheck.catalogue import builtin_rules_dir, load_catalogue, load_rule_file
from pcapcheck.checks import CHECKS
from pcapcheck.cli import app
from pcapcheck.errors import RuleFileError
from pcapcheck.findings import Severity

GOOD = '''
id = "{id}"
title = "A title"
severity = "warning"
category = "close"
rfc = ["RFC 9293 §3.6"]
explanation = "What it checks."
remedy = "What to do."
'''


def write_rule(folder: Path, rule_id: str, text: str | None = None, name: str | None = None) -> Path:
    path = folder / f"{name or rule_id}.toml"
    path.write_text((text if text is not None else GOOD).replace("{id}", rule_id), encoding="utf-8")
    return path


def broken(tmp_path: Path, text: str, rule_id: str = "abortive-close") -> RuleFileError:
    path = write_rule(tmp_path, rule_id, text)
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path)
    return caught.value


def test_every_rule_file_has_a_check_and_every_check_a_rule_file():
    assert set(load_catalogue()) == set(CHECKS)


def test_catalogue_holds_the_rules_the_table_requires_with_their_severities():
    expected = {
        "rst-instead-of-final-ack": "error", "abortive-close": "warning", "rst-answers-fin-retransmit": "error",
        "missing-fin-retransmit": "error", "short-time-wait": "error", "time-wait-reuse": "info",
        "close-wait-leak": "warning", "handshake-incomplete": "warning", "connection-refused": "info",
        "capture-midstream": "info", "capture-gap": "info", "capture-one-direction": "info",
        "fin-wait-2-timeout": "warning", "data-after-fin": "error", "data-after-rst": "warning",
        "synack-bad-ack": "error", "fin-ack-mismatch": "error", "rst-out-of-window": "warning",
        "option-not-negotiated": "error", "timestamps-dropped": "warning", "syn-retransmit-too-early": "warning",
        "simultaneous-open": "info", "simultaneous-close": "info", "time-wait-assassination": "info",
    }
    catalogue = load_catalogue()
    assert {rule_id: spec.severity.value for rule_id, spec in catalogue.items()} == expected


def test_capture_notes_are_in_the_capture_quality_category():
    catalogue = load_catalogue()
    assert {i for i, s in catalogue.items() if s.category == "capture-quality"} == {
        "capture-midstream", "capture-gap", "capture-one-direction"
    }


def test_short_time_wait_takes_its_time_wait_from_the_profile():
    spec = load_catalogue()["short-time-wait"]
    assert spec.parameters == {"time_wait": "profile"}
    assert spec.rfc[0] == "RFC 9293 §3.6.1" and "RFC 6191" in spec.rfc
    assert spec.parameter_descriptions["time_wait"]


def test_a_good_rule_file_loads_into_a_rulespec(tmp_path):
    spec = load_rule_file(write_rule(tmp_path, "abortive-close"))
    assert (spec.id, spec.severity, spec.category, spec.rfc) == (
        "abortive-close", Severity.WARNING, "close", ("RFC 9293 §3.6",)
    )


def test_unknown_key_names_file_and_key(tmp_path):
    err = broken(tmp_path, GOOD + 'colour = "red"\n')
    assert err.field == "colour" and "abortive-close.toml" in str(err) and "unknown key" in str(err)


def test_missing_field_is_named(tmp_path):
    err = broken(tmp_path, GOOD.replace('remedy = "What to do."\n', ""))
    assert (err.field, err.problem) == ("remedy", "missing")


def test_wrong_type_is_named(tmp_path):
    err = broken(tmp_path, GOOD.replace('rfc = ["RFC 9293 §3.6"]', 'rfc = "RFC 9293"'))
    assert err.field == "rfc" and "list" in err.problem


def test_bad_severity_is_named(tmp_path):
    err = broken(tmp_path, GOOD.replace('"warning"', '"fatal"'))
    assert err.field == "severity" and "fatal" in err.problem


def test_bad_category_is_named(tmp_path):
    err = broken(tmp_path, GOOD.replace('"close"', '"misc"'))
    assert err.field == "category"


def test_id_different_from_file_name_is_an_error(tmp_path):
    path = write_rule(tmp_path, "abortive-close", name="something-else")
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path)
    assert caught.value.field == "id" and "something-else" in caught.value.problem


def test_invalid_toml_is_one_line_naming_the_file(tmp_path):
    err = broken(tmp_path, 'id = "abortive-close\n')
    assert "abortive-close.toml" in str(err) and "\n" not in str(err)


def test_parameter_without_description_is_named(tmp_path):
    err = broken(tmp_path, GOOD + "[parameters]\nthreshold = { default = 5 }\n")
    assert err.field == "parameters.threshold.description"


def test_profile_default_only_for_profile_values(tmp_path):
    err = broken(tmp_path, GOOD + '[parameters]\nlimit = { default = "profile", description = "x" }\n')
    assert err.field == "parameters.limit.default"


def test_string_parameter_default_is_rejected(tmp_path):
    err = broken(tmp_path, GOOD + '[parameters]\nlimit = { default = "ten", description = "x" }\n')
    assert err.field == "parameters.limit.default"


def test_later_user_folder_wins_for_the_same_rule(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write_rule(first, "abortive-close")
    write_rule(second, "abortive-close", GOOD.replace("A title", "Second"))
    spec = load_catalogue([first, second])["abortive-close"]
    assert (spec.title, spec.path) == ("Second", str(second / "abortive-close.toml"))


def test_user_rule_file_overrides_builtin_metadata(tmp_path):
    write_rule(tmp_path, "abortive-close", GOOD.replace('"warning"', '"error"').replace("A title", "Ours"))
    spec = load_catalogue([tmp_path])["abortive-close"]
    assert (spec.title, spec.severity) == ("Ours", Severity.ERROR)
    assert len(load_catalogue([tmp_path])) == len(load_catalogue())


def test_user_rule_file_without_a_check_is_an_error_naming_the_file(tmp_path):
    write_rule(tmp_path, "my-own-rule")
    with pytest.raises(RuleFileError) as caught:
        load_catalogue([tmp_path])
    assert caught.value.path.endswith("my-own-rule.toml") and caught.value.field == "id"


def test_missing_user_rules_folder_is_an_error(tmp_path):
    with pytest.raises(RuleFileError):
        load_catalogue([tmp_path / "nope"])


def test_missing_builtin_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr("pcapcheck.catalogue.builtin_rules_dir", lambda: tmp_path / "rules")
    with pytest.raises(RuleFileError) as caught:
        load_catalogue()
    assert "built-in rules folder is missing" in str(caught.value)


def test_builtin_rules_folder_is_the_repository_rules_folder():
    assert builtin_rules_dir() == Path(__file__).resolve().parent.parent / "rules"


# through the CLI ------------------------------------------------------------------------


def test_pcapcheck_rules_lists_every_rule():
    outcome = CliRunner().invoke(app, ["rules"], terminal_width=200)
    assert outcome.exit_code == 0
    for rule_id in CHECKS:
        assert rule_id in outcome.output


def test_explain_prints_explanation_rfc_parameters_and_remedy():
    outcome = CliRunner().invoke(app, ["explain", "short-time-wait"], terminal_width=200)
    assert outcome.exit_code == 0
    text = outcome.output
    assert "TIME-WAIT shorter than 2·MSL" in text
    assert "RFC 9293 §3.6.1" in text and "RFC 6191" in text
    assert "time_wait = profile (rfc9293 240, linux 60, windows 120)" in text
    assert "Remedy" in text and "timestamps" in text


def test_explain_unknown_rule_exits_2():
    outcome = CliRunner().invoke(app, ["explain", "no-such-rule"])
    assert outcome.exit_code == 2 and "unknown rule" in outcome.output


def test_broken_user_rule_file_exits_2_with_one_line_naming_file_and_field(tmp_path):
    write_rule(tmp_path, "abortive-close", GOOD.replace('"warning"', '"loud"'))
    outcome = CliRunner().invoke(app, ["rules", "--rules", str(tmp_path)])
    assert outcome.exit_code == 2
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "abortive-close.toml" in lines[0] and "severity" in lines[0]
