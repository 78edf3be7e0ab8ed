"""The restricted unpickler loads arrays and containers and runs no code."""

import io
import os
import pickle

import numpy as np
import pytest

from tfrecords import DatasetError
from tfrecords.build import main
from tfrecords.mmsa_pickle import read_pickle
from tfrecords.safe_pickle import UnsafePickleError, safe_loads


class _WritesMarker:
    """Unpickling this would create the marker file, if the unpickler let it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _OpensMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_arrays_scalars_and_containers_load_under_every_protocol(protocol):
    data = {"train": {"audio": np.arange(6.0).reshape(1, 2, 3),
                      "id": np.array(["a$_$1", "b$_$2"], dtype=object),
                      "labels": np.array([1.5, -2.0], dtype=np.float32),
                      "n": np.int64(3), "names": ["x", ("y", {1, 2})],
                      "u": np.array(["ab", "c"])}}
    loaded = safe_loads(pickle.dumps(data, protocol=protocol))
    np.testing.assert_array_equal(loaded["train"]["audio"], data["train"]["audio"])
    assert loaded["train"]["id"].tolist() == ["a$_$1", "b$_$2"]
    assert loaded["train"]["labels"].dtype == np.float32
    assert loaded["train"]["n"] == 3 and loaded["train"]["names"] == ["x", ("y", {1, 2})]
    assert loaded["train"]["u"].tolist() == ["ab", "c"]


@pytest.mark.parametrize("payload", [_WritesMarker, _OpensMarker])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, payload):
    marker = tmp_path / "marker"
    data = pickle.dumps({"train": {"audio": np.zeros(2), "x": payload(str(marker))}})
    with pytest.raises(UnsafePickleError, match="refused global '(posix|nt|builtins|io)"):
        safe_loads(data)
    assert not marker.exists()


def test_a_pickled_class_instance_is_refused_by_name():
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        safe_loads(pickle.dumps(__import__("collections").OrderedDict(a=1)))


def test_only_the_latin1_codec_is_allowed_through_codecs_encode():
    # A hand-made protocol-2 pickle calling _codecs.encode("x", "rot13").
    data = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(UnsafePickleError, match="rot13"):
        safe_loads(data)


def test_reading_a_malicious_file_is_a_dataset_error_naming_file_and_global(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": _WritesMarker(str(marker))}))
    with pytest.raises(DatasetError) as err:
        read_pickle(str(path))
    assert str(path) in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_the_build_cli_refuses_a_malicious_pickle_and_leaves_no_dataset(
        tmp_path, capsys):
    marker = tmp_path / "marker"
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": _WritesMarker(str(marker))}))
    data_dir = tmp_path / "data"
    code = main(["--dataset", "mosi", "--source", str(path), "--data-dir", str(data_dir)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "refused global" in err
    assert "Traceback" not in err
    assert not marker.exists()
    assert not data_dir.exists() or os.listdir(data_dir) == []
