"""Tests of ldm_core.io: atomic writes leave a complete file with mode 0644 and no temporary file; cache keys and
cached reads."""
import hashlib
import os
import stat
import warnings

import numpy as np
import pytest
import torch

from ldm_core.io import FILE_MODE, atomic_torch_save, atomic_write_bytes, content_key, read_cached


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_bytes_content_mode_and_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "a.json"  # missing folder is created
    assert atomic_write_bytes(path, b"first") == path
    assert atomic_write_bytes(path, b"second") == path  # replaces
    assert path.read_bytes() == b"second"
    assert _mode(path) == FILE_MODE == 0o644
    assert os.listdir(path.parent) == ["a.json"]


def test_atomic_torch_save_round_trip_mode_and_no_temp_file(tmp_path):
    path = tmp_path / "m.pt"
    atomic_torch_save({"w": torch.arange(3.0), "name": "x"}, path)
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["w"], torch.arange(3.0)) and loaded["name"] == "x"
    assert _mode(path) == 0o644
    assert os.listdir(tmp_path) == ["m.pt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "m.pt"
    atomic_write_bytes(path, b"old")

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"x": Unsaveable()}, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.pt"]


def test_content_key_hashes_bytes_arrays_and_sorted_json_in_order():
    assert content_key(b"abc", digits=64) == hashlib.sha256(b"abc").hexdigest()  # bytes as they are
    a = np.arange(6, dtype=np.int64).reshape(2, 3).T  # not C-contiguous: hashed as its C-order bytes
    assert content_key(a) == hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:20]
    assert content_key({"b": 1, "a": [1.5, None]}) == hashlib.sha256(b'{"a": [1.5, null], "b": 1}').hexdigest()[:20]
    assert content_key(b"x", b"y") == content_key(b"xy") != content_key(b"y", b"x")
    assert len(content_key({}, digits=8)) == 8
    with pytest.raises(TypeError):  # a value JSON cannot write is an error, not silently a string ...
        content_key({"epochs": np.int64(5)})
    assert content_key({"p": np.int64(5)}, default=str) == content_key({"p": "5"})  # ... unless the caller says so


def test_read_cached_absent_good_and_damaged_files(tmp_path):
    path = tmp_path / "state.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # absent: None, silently
        assert read_cached(None, "thing") is None and read_cached(path, "thing") is None
    atomic_torch_save({"w": torch.ones(2)}, path)
    assert read_cached(path, "thing", build=lambda s: float(s["w"].sum())) == 2.0
    with pytest.warns(RuntimeWarning, match=r"damaged cached thing .*state\.pt \(KeyError"):  # build raises
        assert read_cached(path, "thing", build=lambda s: s["missing"]) is None
    with pytest.raises(ZeroDivisionError):  # an error that is not about the file propagates
        read_cached(path, "thing", build=lambda s: 1 / 0)
    path.write_bytes(b"j")  # a few bytes of garbage: torch.load raises struct.error
    with pytest.warns(RuntimeWarning, match=r"damaged cached thing .*\(error: "):
        assert read_cached(path, "thing") is None
    path.write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match=r"ignoring the damaged cached thing .*computed again"):
        assert read_cached(path, "thing") is None
