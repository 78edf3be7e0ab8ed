"""msa_core.io: atomic writes (permissions, no temporary files left behind, old file kept
on failure), both kinds of CSV rows, read_json's errors, the data directory."""

import json
import math
import os
import stat

import pytest

from msa_core import io as msa_io


def listing(folder):
    return sorted(os.listdir(folder))


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield 0o022
    os.umask(previous)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_final_file_has_the_permissions_of_a_plainly_created_file(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = tmp_path / "metrics.json"
        msa_io.write_json_atomic(str(path), {"MAE": 0.5})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE(plain.stat().st_mode)


def test_overwrite_replaces_content_and_leaves_only_the_target(tmp_path, umask_022):
    path = tmp_path / "run" / "state.json"  # the parent is created
    msa_io.write_json_atomic(str(path), {"epoch": 1})
    msa_io.write_json_atomic(str(path), {"epoch": 2, "loss": float("nan")})
    value = msa_io.read_json(str(path))
    assert value["epoch"] == 2 and math.isnan(value["loss"])
    assert listing(path.parent) == ["state.json"]
    assert path.read_text().endswith("\n")


def test_unserialisable_value_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "record.json"
    msa_io.write_json_atomic(str(path), {"ok": True})
    with pytest.raises(TypeError):
        msa_io.write_json_atomic(str(path), {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": True}
    assert listing(tmp_path) == ["record.json"]


def test_error_inside_the_writer_removes_the_temp_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "notes.txt"
    msa_io.write_text_atomic(str(path), "old\n")
    with pytest.raises(TypeError):
        msa_io.write_text_atomic(str(path), b"bytes are not text")
    with pytest.raises(KeyboardInterrupt):  # not only Exception: Ctrl-C too
        with msa_io.atomic_path(str(path)) as temp:
            with open(temp, "w") as handle:
                handle.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n"
    assert listing(tmp_path) == ["notes.txt"]


def test_atomic_path_keeps_the_extension_for_format_sniffing_writers(tmp_path):
    with msa_io.atomic_path(str(tmp_path / "model.keras")) as temp:
        assert temp.endswith("model.keras")
        assert os.path.dirname(temp) == str(tmp_path)
        with open(temp, "w") as handle:
            handle.write("zip")
    assert listing(tmp_path) == ["model.keras"]


def test_save_model_atomic_needs_a_keras_file_and_cleans_up_a_failed_save(tmp_path):
    class FailingModel:
        def save(self, path):
            with open(path, "w") as handle:
                handle.write("partial")
            raise RuntimeError("disk full")

    with pytest.raises(ValueError, match=r"\.keras"):
        msa_io.save_model_atomic(FailingModel(), str(tmp_path / "model.h5"))
    with pytest.raises(RuntimeError, match="disk full"):
        msa_io.save_model_atomic(FailingModel(), str(tmp_path / "model.keras"))
    assert listing(tmp_path) == []


def test_csv_from_mappings(tmp_path):
    path = str(tmp_path / "trials.csv")
    rows = [{"trial_id": "0", "objective": 0.7, "error": None},
            {"trial_id": "1", "objective": float("nan"), "extra": 3}]
    msa_io.write_csv_atomic(path, rows)
    assert open(path).read() == ("trial_id,objective,error,extra\n"
                                 "0,0.7,,\n"
                                 "1,nan,,3\n")
    assert msa_io.read_csv(path)[1] == {"trial_id": "1", "objective": "nan", "error": "",
                                        "extra": "3"}

    msa_io.write_csv_atomic(path, rows[:1], header=["objective", "trial_id", "error", "x"])
    assert open(path).read() == "objective,trial_id,error,x\n0.7,0,,\n"
    with pytest.raises(ValueError):  # a key the header does not name
        msa_io.write_csv_atomic(path, rows, header=["trial_id"])


def test_csv_from_sequences(tmp_path):
    path = str(tmp_path / "predictions.csv")
    msa_io.write_csv_atomic(path, ((f"id{i}", i * 0.5, None) for i in range(2)),
                            header=("id", "label", "text"))
    assert open(path).read() == "id,label,text\nid0,0.0,\nid1,0.5,\n"
    msa_io.write_csv_atomic(path, [[1, 2]])
    assert open(path).read() == "1,2\n"


def test_csv_rejects_mixed_rows_and_string_rows(tmp_path):
    path = tmp_path / "bad.csv"
    with pytest.raises(TypeError, match="all mappings or all sequences"):
        msa_io.write_csv_atomic(str(path), [{"a": 1}, [1]])
    with pytest.raises(TypeError, match="string"):
        msa_io.write_csv_atomic(str(path), ["id", "label"])
    assert listing(tmp_path) == []


class StageError(RuntimeError):
    pass


def test_read_json_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(msa_io.JSONFileError, match=r"missing\.json: No such file"):
        msa_io.read_json(str(missing))

    broken = tmp_path / "broken.json"
    broken.write_text('{"epoch": 1,')
    with pytest.raises(StageError, match=r"broken\.json: not valid JSON") as info:
        msa_io.read_json(str(broken), error=StageError)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)

    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(msa_io.JSONFileError, match=r"binary\.json"):
        msa_io.read_json(str(binary))


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("M3SA_DATA_DIR", raising=False)
    assert msa_io.default_data_dir() == str(tmp_path / "tensorflow_datasets")
    monkeypatch.setenv("M3SA_DATA_DIR", "~/data")
    assert msa_io.default_data_dir() == str(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert msa_io.default_data_dir("given") == str(tmp_path / "given")
