"""`mlcompile run` on bad local data, hostile output paths and a damaged resume state:
located errors with exit status 2 before any step starts, and a resume that survives a
state file cut short."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from requires import require
from test_run_local import run, statuses, write_system

from mlcompile.cli import main

require("sklearn", "mlflow", "pandas", "pyarrow")


def _invoke(spec: Path, *args: str):
    return CliRunner().invoke(main, ["run", str(spec), "--target", str(spec.parent / "targets" / "local.yaml"), "--only", "training", *args])


def _rewrite_csv(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    rows = [line.split(",") for line in path.read_text().splitlines()]
    path.write_text("\n".join(",".join(edit(row, index)) for index, row in enumerate(rows)) + "\n")


def _refused(spec: Path, *args: str) -> str:
    result = _invoke(spec, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert not (spec.parent / ".mlcompile" / "runs").exists(), "a step ran"
    return result.output


# ---------------------------------------------------------------------- data problems


def test_a_missing_feature_column_names_the_file_the_column_and_the_view(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    _rewrite_csv(spec.parent / "data/activity.csv", lambda row, _: row[:3] + row[4:])  # spend_30d gone
    out = _refused(spec)
    assert (
        "mlcompile.yaml:10:7: error: features.views[0]: source activity: file://data/activity.csv has no column 'spend_30d' (feature spend_30d of view customer_activity)"
        in out
    )
    assert "its columns: customer_id, event_ts, orders_30d, plan" in out


def test_a_header_only_csv_is_refused_at_its_source(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    labels = spec.parent / "data/labels.csv"
    labels.write_text(labels.read_text().splitlines()[0] + "\n")
    out = _refused(spec)
    assert "features.sources[1].uri: source labels: file://data/labels.csv has no data rows (only a header)" in out


def test_a_source_without_the_entity_key_is_refused_not_trained_on_empty_features(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    _rewrite_csv(spec.parent / "data/activity.csv", lambda row, i: ["cust_id", *row[1:]] if i == 0 else row)
    out = _refused(spec)
    assert "has no column 'customer_id' (a join key of view customer_activity)" in out
    assert "did you mean 'cust_id'?" in out


def test_a_label_source_without_the_label_column_points_at_the_dataset(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    _rewrite_csv(spec.parent / "data/labels.csv", lambda row, i: [*row[:2], "target"] if i == 0 else row)
    out = _refused(spec)
    assert "training.dataset: source labels: file://data/labels.csv has no column 'churned' (the label)" in out


# ---------------------------------------------------------------------- output paths


def _set_profile(spec: Path, local: str) -> None:
    profile = spec.parent / "targets/local.yaml"
    profile.write_text(profile.read_text().replace("local: {workdir: .mlcompile}", local))


def test_a_workdir_outside_the_project_is_refused_at_the_profile(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "project" / "sys")
    _set_profile(spec, "local: {workdir: ../../elsewhere}")
    out = _refused(spec)
    assert "targets/local.yaml:5:18: error: local.workdir: the workdir" in out and "is outside the spec's folder" in out
    assert not (tmp_path / "elsewhere").exists()


def test_batch_scores_cannot_escape_through_the_uri_or_a_symlink(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "project" / "sys")
    text = spec.read_text()
    spec.write_text(text.replace("file://scores/scores.csv", "file://../../x/scores.csv"))
    assert "batch scores would be written to" in _refused(spec)
    (spec.parent / "linked").symlink_to(tmp_path)
    spec.write_text(text.replace("file://scores/scores.csv", "file://linked/scores.csv"))
    assert "deployment.batch.output.uri: batch scores would be written to" in _refused(spec)


def test_the_profile_may_allow_an_output_root(tmp_path: Path) -> None:
    from mlcompile.local.run import prepare

    spec = write_system(tmp_path / "project" / "sys")
    outside = tmp_path / "runs"
    _set_profile(spec, f"local: {{workdir: {outside}/wd, allowed_output_roots: [{outside}]}}")
    assert prepare(str(spec), str(spec.parent / "targets/local.yaml")).workdir == outside / "wd"


# ---------------------------------------------------------------------- resume


def test_a_truncated_state_file_means_not_done_and_is_rewritten_whole(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    only = ("--only", "extract-features", "--only", "validate-data")
    run(spec, *only)
    state = spec.parent / ".mlcompile/state/tiny-churn-training/validate-data.json"
    whole = state.read_bytes()
    state.write_bytes(whole[: len(whole) // 2])  # a crash or a full disk mid-write
    (spec.parent / ".mlcompile/state/tiny-churn-training/extract-features.json").write_bytes(b"\xff\xfe not json")
    again = run(spec, *only, "--resume")
    assert again["_exit_code"] == 0
    assert statuses(again, "training") == {"extract-features": "succeeded", "validate-data": "succeeded"}
    assert json.loads(state.read_text())["run_id"] == again["run_id"]
    assert not list(state.parent.glob(".*.tmp*")), "a temporary state file was left behind"
