import json
import os
import stat

import numpy as np
import pytest

from ldm_core.study import results
from ldm_core.metrics import evaluate
from ldm_core.study.results import (ResultsMismatchError, compare, load_results, provenance, results_files_ok, verify,
                              write_results)


def _run(rng, out, *, shift=0.1):
    t = rng.random((6, 12, 12)).astype(np.float32)
    labels = np.array([1, 2] * 3)
    recons = {"a": np.clip(t + shift, 0, 1), "b": np.full_like(t, 0.5)}
    m = {k: evaluate(v, t, labels, n_boot=100, n_perm=20) for k, v in recons.items()}
    m["perfect"] = evaluate(t, t, labels, n_boot=100, n_perm=0)  # PSNR inf must survive JSON
    recons["perfect"] = t
    return write_results(out, chapter="ch", metrics=m, reconstructions=recons, targets=t, labels=labels,
                         params={"seed": 0}, wall_time_s=1.5, publication={"kind": "scratch"}), m


def test_round_trip_and_recompute(rng, tmp_path):
    out, m = _run(rng, tmp_path / "ch")
    assert (out / "metrics.json").is_file() and (out / "reconstructions.npz").is_file()
    loaded, recons, targets, labels = load_results(out)
    assert list(recons) == ["a", "b", "perfect"] and recons["a"].dtype == np.float32
    assert loaded["models"]["perfect"]["psnr"]["mean"] == float("inf")
    table = verify(out)  # metrics recomputed from the npz match the json
    assert table["ok"].all() and len(table) == 3 * 6
    prov = loaded["provenance"]
    assert {"git_commit", "device", "torch", "timestamp_utc"} <= set(prov)
    assert prov["publication"] == {"kind": "scratch"}
    assert loaded["params"] == {"seed": 0} and loaded["wall_time_s"] == 1.5
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_files_are_readable_by_everyone(rng, tmp_path):
    out, _ = _run(rng, tmp_path / "ch")
    for name in ("metrics.json", "reconstructions.npz"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o644


def test_interrupted_pair_is_refused_not_read(rng, tmp_path, monkeypatch):
    out, _ = _run(rng, tmp_path / "ch")
    real_write = results.atomic_write_bytes

    def killed_after_npz(path, data):  # the new npz lands, then the process dies before metrics.json
        if path.name == "metrics.json":
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(results, "atomic_write_bytes", killed_after_npz)
    with pytest.raises(KeyboardInterrupt):
        _run(rng, out, shift=0.3)
    with pytest.raises(ResultsMismatchError, match="interrupted between the two writes. Re-run the 'ch' chapter"):
        load_results(out)
    monkeypatch.setattr(results, "atomic_write_bytes", real_write)
    _run(rng, out, shift=0.3)  # a complete rerun repairs it
    assert verify(out)["ok"].all()


def test_mismatched_names_and_bad_recon(rng, tmp_path):
    t = rng.random((2, 4, 4))
    with pytest.raises(ValueError, match="must name the same models"):
        write_results(tmp_path / "x", chapter="x", metrics={"a": {}}, reconstructions={"b": t}, targets=t,
                      labels=[1, 2], params={}, wall_time_s=0)
    with pytest.raises(ValueError, match="reconstructions of 'a'"):
        write_results(tmp_path / "x", chapter="x", metrics={"a": {}}, reconstructions={"a": t * 3}, targets=t,
                      labels=[1, 2], params={}, wall_time_s=0)
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_missing_results_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the 'nope' chapter first"):
        load_results(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "metrics.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="reconstructions.npz is missing"):
        results_files_ok(tmp_path / "half")


def test_verify_catches_a_tampered_json(rng, tmp_path):
    out, _ = _run(rng, tmp_path / "ch")
    doc = json.loads((out / "metrics.json").read_text())
    doc["models"]["a"]["psnr"]["mean"] += 1.0
    (out / "metrics.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"does not match its reconstructions for \[\('a', 'psnr'\)\]"):
        verify(out)


def test_compare_two_runs(rng, tmp_path):
    a, ma = _run(rng, tmp_path / "a" / "ch", shift=0.1)
    b, mb = _run(np.random.default_rng(0), tmp_path / "b" / "ch", shift=0.2)
    table = compare(a, b, labels=("scratch", "published"))
    row = table.loc[("a", "psnr")]
    assert row["scratch"] == pytest.approx(ma["a"]["psnr"]["mean"])
    assert row["scratch - published"] == pytest.approx(ma["a"]["psnr"]["mean"] - mb["a"]["psnr"]["mean"])


def test_provenance_is_json_serialisable():
    json.dumps(provenance())


def test_verify_of_a_chapter_without_reconstructions_is_an_empty_table(rng, tmp_path):
    """Summary chapters (conclusions, executive summary) write metrics but no reconstructions."""
    t = rng.random((4, 12, 12)).astype(np.float32)
    out = write_results(tmp_path / "sum", chapter="sum", metrics={}, reconstructions={}, targets=t,
                        labels=np.array([1, 2, 1, 2]), params={}, wall_time_s=0.1, publication={"kind": "scratch"})
    table = verify(out)
    assert len(table) == 0 and list(table.index.names) == ["model", "metric"] and table["ok"].all()


def test_commit_is_dirty_for_code_changes_not_for_the_study_outputs(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for rel in ("ldm_core/a.py", "results/ch/metrics.json", "book/ch.ipynb", "book/run_log.full.json", "book/_toc.yml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("0")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = results._git_commit(tmp_path)
    assert len(head) == 40
    for rel in ("results/ch/metrics.json", "book/ch.ipynb", "book/run_log.full.json"):
        (tmp_path / rel).write_text("1")  # what a study run writes
    assert results._git_commit(tmp_path) == head
    (tmp_path / "book/_toc.yml").write_text("1")  # a book source, not an output
    assert results._git_commit(tmp_path) == head + "+dirty"
    git("checkout", "--", "book/_toc.yml")
    (tmp_path / "ldm_core/a.py").write_text("1")
    assert results._git_commit(tmp_path) == head + "+dirty"
