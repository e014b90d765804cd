"""`datasets check`: every kind of problem reported; the CLI never shows a traceback."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

from catalogue_trees import CASME2_HEADER, make_casme2, make_smic, write_xlsx
from mer_cache.catalogue import DatasetWarning, check_dataset
from mer_cache.catalogue.problems import (
    APEX_RANGE, LAYOUT, MISSING_FOLDER, NO_FRAMES, UNANNOTATED_FOLDER, UNKNOWN_LABEL, UNREADABLE,
)
from mer_cache.cli import app

ROWS = [["01", "EP01_01", None, 2, 5, 8, None, "12", "happiness", 1],    # fine
        ["01", "EP01_02", None, 2, 12, 8, None, "12", "surprise", 1],    # apex outside onset..offset
        ["02", "EP02_01", None, 1, 2, 3, None, "4", "disgust", 3],       # folder missing
        ["02", "EP02_02", None, 1, 2, 3, None, "4", "disgust", 3],       # folder without frames
        ["03", "EP03_01", None, 1, 2, 3, None, "4", "delight", 3]]       # unknown label


@pytest.fixture
def broken(tmp_path):
    make_casme2(tmp_path, ROWS, skip={("sub02", "EP02_01")})
    for f in (tmp_path / "CASME2_RAW_selected/sub02/EP02_02").iterdir():
        f.unlink()
    (tmp_path / "CASME2_RAW_selected/sub01/EP01_01/img5.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "CASME2_RAW_selected/sub01/EP_extra").mkdir()
    return tmp_path


def _out(result) -> str:
    return " ".join(result.output.split())


def test_check_reports_every_kind(broken):
    report = check_dataset("casme2", broken)
    kinds = {(p.kind, p.severity) for p in report.problems}
    assert {(MISSING_FOLDER, "fatal"), (NO_FRAMES, "fatal"), (UNKNOWN_LABEL, "fatal"),
            (APEX_RANGE, "warning"), (UNANNOTATED_FOLDER, "warning")} <= kinds
    assert not any(p.kind == UNREADABLE for p in report.problems)  # only with deep
    assert [c.clip_id for c in report.clips] == ["casme2/sub01/EP01_01", "casme2/sub01/EP01_02"]
    assert report.counts() == {"sub01": {"happiness": 1, "surprise": 1}}
    assert not report.ok and report.problems[0].severity == "fatal"
    missing = next(p for p in report.problems if p.kind == MISSING_FOLDER)
    assert missing.path.name == "EP02_01" and "row 4 of CASME2-coding-test.xlsx" in missing.message

    seen = []
    deep = check_dataset("casme2", broken, deep=True, progress=lambda d, t: seen.append((d, t)))
    bad = [p for p in deep.problems if p.kind == UNREADABLE]
    assert [p.path.name for p in bad] == ["img5.jpg"] and bad[0].severity == "fatal"
    assert seen[-1][0] == seen[-1][1] > 0


def test_check_cli_prints_table_and_report(broken):
    result = CliRunner().invoke(app, ["datasets", "check", "--dataset", "casme2", "--root", str(broken), "--deep"])
    out = _out(result)
    assert result.exit_code == 1 and "Traceback" not in out
    assert "sub01" in out and "happiness" in out
    for text in ("has no frame folder", "holds no image", "'delight' is not a CASME II label",
                 "apex frame 12 is outside onset..offset 2..8", "img5.jpg", "FATAL", "warning"):
        assert text in out, text


def test_check_cli_clean_dataset_exits_zero(tmp_path):
    make_smic(tmp_path)
    result = CliRunner().invoke(app, ["datasets", "check", "-d", "smic", "-r", str(tmp_path), "--deep"])
    assert result.exit_code == 0, result.output
    assert "4 clips, 2 subjects; 0 fatal problem(s)" in _out(result)
    listed = CliRunner().invoke(app, ["datasets", "list", "-d", "smic", "-r", str(tmp_path),
                                      "-o", "include_non_micro=false"])
    assert listed.exit_code == 0 and "smic/s2/s2_sur_01" in listed.output and "s1_no_01" not in listed.output


def _bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    make_smic(tmp_path / "wrong", wrapper="photos")
    nocol = tmp_path / "nocol"
    write_xlsx(nocol / "CASME2-coding-x.xlsx", [h for h in CASME2_HEADER if h != "OffsetFrame"], [ROWS[0][:5]])
    noframes = make_casme2(tmp_path / "noframes", ROWS[:1])
    for f in (noframes / "CASME2_RAW_selected/sub01/EP01_01").iterdir():
        f.unlink()
    badlabel = make_casme2(tmp_path / "badlabel", ROWS[4:])
    return [
        ("smic", tmp_path / "empty", "is empty"),
        ("smic", tmp_path / "missing", "does not exist"),
        ("smic", tmp_path / "wrong", "No SMIC HS subject folders found"),
        ("casme2", nocol, "no column 'OffsetFrame'"),
        ("casme2", noframes, "the clip folder holds no image"),
        ("casme2", badlabel, "'delight' is not a CASME II label"),
    ]


@pytest.mark.parametrize("command", ["check", "list"])
def test_bad_input_is_a_message_not_a_traceback(tmp_path, command):
    runner = CliRunner()
    for dataset, root, expected in _bad_inputs(tmp_path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            result = runner.invoke(app, ["datasets", command, "--dataset", dataset, "--root", str(root)])
        out = _out(result)
        assert result.exit_code in (1, 2), (root, out)
        assert isinstance(result.exception, SystemExit), (root, result.exception)
        assert "Traceback" not in out
        assert expected in out, (command, root, out)
        assert root.name in out


def test_layout_error_becomes_one_fatal_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    report = check_dataset("casme2", tmp_path / "empty")
    assert [(p.kind, p.severity) for p in report.problems] == [(LAYOUT, "fatal")]


def test_unknown_dataset_and_bad_option_in_cli(tmp_path):
    make_smic(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["datasets", "check", "-d", "smicc", "-r", str(tmp_path)])
    assert result.exit_code == 2 and "Known datasets" in _out(result)
    result = runner.invoke(app, ["datasets", "check", "-d", "smic", "-r", str(tmp_path), "-o", "modality"])
    assert result.exit_code == 2 and "KEY=VALUE" in _out(result)
