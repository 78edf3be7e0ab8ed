"""MMSA pickles: round trip into batches, and every bad input is a clear error."""

import os
import pickle

import numpy as np
import pytest

from tfrecords import DatasetError, build_dataset, load_dataset
from tfrecords.build import main
from tfrecords.mmsa_pickle import resolve_pickle_path

from tests.data.fake_mmsa import expected_example, fake_mmsa_dataset, write_pickle


def _batches_by_id(splits):
    out = {}
    for split, dataset in splits.items():
        for features, labels in dataset:
            f = {k: v.numpy() for k, v in features.items()}
            l = {k: v.numpy() for k, v in labels.items()}
            for i, sample_id in enumerate(f["id"]):
                out[(split, sample_id.decode())] = (
                    {k: v[i] for k, v in f.items()}, {k: v[i] for k, v in l.items()})
    return out


@pytest.mark.parametrize("name", ["mosi", "sims"])
def test_a_pickle_in_mmsa_layout_round_trips_into_batches(tmp_path, name):
    raw = fake_mmsa_dataset(name, max_lengths={"text": 12, "audio": 20, "vision": 9})
    source = write_pickle(raw, str(tmp_path / "whatever.pkl"))
    data_dir = str(tmp_path / "data")
    info = build_dataset(name, data_dir, source=source)
    assert info.split_sizes == {"train": 5, "valid": 3, "test": 4}
    assert info.max_lengths == {"text": 12, "audio": 20, "vision": 9}
    assert info.bayes_reference is None and info.has_unimodal_labels == (name == "sims")
    splits, _ = load_dataset(name, data_dir, batch_size=2, keep_ids=True, shuffle=False)
    got = _batches_by_id(splits)
    assert len(got) == 12
    for split, arrays in raw.items():
        for i, sample_id in enumerate(arrays["id"]):
            features, labels = got[(split, sample_id)]
            want = expected_example(arrays, i)
            for key, value in want.items():
                length = len(value)
                np.testing.assert_array_equal(features[key][:length], value)
                assert not np.any(features[key][length:])
            for m in ("text", "audio", "vision"):
                assert features[f"{m}_length"] == len(want[m])
            assert np.isfinite(features["audio"]).all()
            assert labels["fused"] == np.float32(arrays["regression_labels"][i])
            if name == "sims":
                assert labels["vision"] == np.float32(arrays["regression_labels_V"][i])
    # The fake data has the quirks the test is about.
    assert any(np.isneginf(a["audio"]).any() for a in raw.values())
    assert any((a["audio_lengths"] == 0).any() for a in raw.values())


def test_source_may_be_the_folder_holding_the_standard_file(tmp_path):
    folder = tmp_path / "MOSI" / "Processed"
    folder.mkdir(parents=True)
    write_pickle({}, str(folder / "aligned_50.pkl"))
    target = write_pickle({}, str(folder / "unaligned_50.pkl"))
    assert resolve_pickle_path(str(tmp_path / "MOSI"), "mosi") == target
    assert resolve_pickle_path(str(folder), "mosi") == target
    other = tmp_path / "other"
    other.mkdir()
    only = write_pickle({}, str(other / "my_sims.pkl"))
    assert resolve_pickle_path(str(other), "sims") == only
    write_pickle({}, str(other / "second.pkl"))
    with pytest.raises(DatasetError, match="unaligned_39.pkl"):
        resolve_pickle_path(str(other), "sims")


def _drop_key(data):
    del data["valid"]["audio"]


def _wrong_shape(data):
    data["valid"]["audio"] = data["valid"]["audio"][:, :, 0]


def _absent_split(data):
    del data["test"]


def _nan(data):
    data["train"]["vision"][1, 0, 3] = np.nan


def _too_long(data):
    data["train"]["vision_lengths"][2] = 10


def _inf_in_text(data):
    data["valid"]["text"][0, 0, 0] = np.inf


def _label_out_of_range(data):
    data["test"]["regression_labels"][0] = 3.5


BAD_INPUTS = {
    "missing key": (_drop_key, ["split 'valid'", "key 'audio'", "missing"]),
    "wrong shape": (_wrong_shape, ["split 'valid'", "key 'audio'", "expected shape (N, T, D)",
                                   "N=3", "got (3, 20)"]),
    "absent split": (_absent_split, ["split 'test' is absent"]),
    "NaN": (_nan, ["split 'train'", "key 'vision'", "NaN", "sample 1"]),
    "length beyond the array": (_too_long, ["key 'vision_lengths'", "[0, 9]", "sample 2"]),
    "inf outside audio": (_inf_in_text, ["key 'text'", "only 'audio' may hold"]),
    "label out of range": (_label_out_of_range, ["key 'regression_labels'", "[-3, 3]"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_each_bad_input_exits_nonzero_with_its_message_and_leaves_no_dataset(
        tmp_path, capsys, case):
    corrupt, expected = BAD_INPUTS[case]
    data = fake_mmsa_dataset("mosi", max_lengths={"text": 6, "audio": 20, "vision": 9})
    corrupt(data)
    source = write_pickle(data, str(tmp_path / "unaligned_50.pkl"))
    data_dir = tmp_path / "data"
    code = main(["--dataset", "mosi", "--source", source, "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert source in err
    for part in expected:
        assert part in err
    assert os.listdir(data_dir) == []


def test_a_truncated_file_is_an_error_and_leaves_no_dataset(tmp_path, capsys):
    data = fake_mmsa_dataset("mosi", max_lengths={"text": 6, "audio": 20, "vision": 9})
    blob = pickle.dumps(data, protocol=4)
    source = tmp_path / "unaligned_50.pkl"
    source.write_bytes(blob[: len(blob) // 2])
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        build_dataset("mosi", str(data_dir), source=str(source))
    assert os.listdir(data_dir) == []
    code = main(["--dataset", "mosi", "--source", str(source), "--data-dir", str(data_dir)])
    assert code == 2 and str(source) in capsys.readouterr().err


def test_the_cli_requires_source_for_a_real_dataset_and_says_how(tmp_path, capsys):
    code = main(["--dataset", "sims", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "--source /path/to/SIMS/Processed/unaligned_39.pkl" in err
    assert "download" in err
    assert os.listdir(tmp_path) == []


def test_the_cli_rejects_a_missing_source_file_and_an_unknown_dataset(tmp_path, capsys):
    assert main(["--dataset", "mosi", "--source", str(tmp_path / "nope.pkl"),
                 "--data-dir", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--dataset", "iemocap", "--data-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert main(["--dataset", "synthetic-mosi", "--scale", "1.5",
                 "--data-dir", str(tmp_path)]) == 2
    assert "--scale must be in (0, 1]" in capsys.readouterr().err


def test_the_cli_builds_a_real_dataset_and_prints_counts_and_dims(tmp_path, capfd):
    data = fake_mmsa_dataset("mosi", max_lengths={"text": 6, "audio": 20, "vision": 9})
    source = write_pickle(data, str(tmp_path / "unaligned_50.pkl"))
    code = main(["--dataset", "mosi", "--source", str(tmp_path),
                 "--data-dir", str(tmp_path / "data")])
    out, err = capfd.readouterr()
    assert code == 0
    # Only the project's own lines: tensorflow-datasets' announcements name the
    # temporary build folder, which is gone by the time anyone reads them.
    assert ".incomplete-" not in out + err
    assert all(line.startswith(("mosi: ", "dataset mosi", "  ")) for line in out.splitlines())
    assert "Generating" not in err and "Shuffling" not in err
    assert "train: 5 samples" in out and "test : 4 samples" in out
    assert "audio : dim 5, max length 20" in out
    assert os.listdir(tmp_path / "data") == ["mmsa_mosi"]
    assert source
