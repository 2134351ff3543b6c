"""Tests of ldm_core.literature: quoted numbers carry a source; nothing is filled in without one."""
import numbers

from ldm_core import literature


def test_every_published_entry_names_its_source_and_status():
    assert literature.PUBLISHED
    for e in literature.PUBLISHED:
        assert e["paper"] and e["status"] and e["how computed"]
        assert set(e["values"]) == {"psnr", "ssim", "pixel_r", "mse"}
        for v in e["values"].values():
            assert v is None or isinstance(v, numbers.Number)
        if all(v is None for v in e["values"].values()):
            assert e["status"].startswith("not found")


def test_published_table_marks_missing_numbers():
    t = literature.published_table()
    assert list(t.index) == [e["method"] for e in literature.PUBLISHED]
    for e in literature.PUBLISHED:
        for m, v in e["values"].items():
            assert t.loc[e["method"], f"{m} (as reported)"] == ("not found" if v is None else v)
    assert all("report" in r["source"] for r in literature.REPORT_LITERATURE)
