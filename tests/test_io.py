"""Tests of ldm_core.io: atomic writes leave a complete file with mode 0644 and no temporary file."""
import os
import stat

import pytest
import torch

from ldm_core.io import FILE_MODE, atomic_torch_save, atomic_write_bytes


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
