import json

import numpy as np
import pytest

from ldm_core.metrics import evaluate
from ldm_core.results import load_results, provenance, write_results


def _run(rng, root):
    t = rng.random((6, 12, 12)).astype(np.float32)
    labels = np.array([1, 2] * 3)
    recons = {"a": np.clip(t + 0.1, 0, 1), "b": np.full_like(t, 0.5)}
    m = {k: evaluate(v, t, labels, n_boot=100, n_perm=20) for k, v in recons.items()}
    m["perfect"] = evaluate(t, t, labels, n_boot=100, n_perm=0)  # PSNR inf must survive JSON
    recons["perfect"] = t
    return write_results("ch", metrics=m, reconstructions=recons, targets=t, labels=labels,
                         params={"seed": 0}, wall_time_s=1.5, root=root), m


def test_round_trip_and_recompute(rng, tmp_path):
    out, m = _run(rng, tmp_path)
    assert (out / "metrics.json").is_file() and (out / "reconstructions.npz").is_file()
    loaded, recons, targets, labels = load_results("ch", tmp_path)
    assert list(recons) == ["a", "b", "perfect"] and recons["a"].dtype == np.float32
    assert loaded["models"]["perfect"]["psnr"]["mean"] == float("inf")
    for name, rec in recons.items():  # metrics recomputed from the npz match the json
        again = evaluate(rec, targets, labels, n_boot=100, n_perm=0)
        for k in ("psnr", "ssim", "pixel_r", "mse", "id2"):
            assert again[k]["mean"] == pytest.approx(loaded["models"][name][k]["mean"])
    prov = loaded["provenance"]
    assert {"git_commit", "device", "torch", "timestamp_utc"} <= set(prov)
    assert loaded["params"] == {"seed": 0} and loaded["wall_time_s"] == 1.5
    assert not list(out.glob("*.tmp"))


def test_mismatched_names_and_bad_recon(rng, tmp_path):
    t = rng.random((2, 4, 4))
    with pytest.raises(ValueError, match="must name the same models"):
        write_results("x", metrics={"a": {}}, reconstructions={"b": t}, targets=t, labels=[1, 2], params={},
                      wall_time_s=0, root=tmp_path)
    with pytest.raises(ValueError, match="reconstructions of 'a'"):
        write_results("x", metrics={"a": {}}, reconstructions={"a": t * 3}, targets=t, labels=[1, 2], params={},
                      wall_time_s=0, root=tmp_path)
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_missing_results_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the 'nope' chapter first"):
        load_results("nope", tmp_path)


def test_provenance_is_json_serialisable():
    json.dumps(provenance())
