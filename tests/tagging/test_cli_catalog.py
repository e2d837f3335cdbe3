"""``tagging list``, ``export`` and ``failures`` on a small real LanceDB catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from serving_helpers import FAKE_DIMS, _FakeResult

from tagging.cli.main import main
from tagging.store.catalog import Catalog
from tagging.store.failures import FailureLog


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    rows = []
    for i, (vid, tags, passed) in enumerate([("v-dance", ["dance"], True), ("v-food", ["food", "travel"], False),
                                             ("v-none", [], None)]):
        r = _FakeResult(vid, "c", f"{vid}.mp4").to_row()
        r |= {"tags": tags, "tag_scores": [0.8 - 0.1 * j for j in range(len(tags))], "review_passed": passed,
              "review_json": json.dumps({"passed": passed}), "cf_vector": [float(i)] * 4}
        rows.append(r)
    Catalog(tmp_path / "db", dims=FAKE_DIMS).upsert(rows)
    return tmp_path / "db"


def test_list(db: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1] == f"1-3 of 3 videos in {db}"
    assert main(["list", "--db", str(db), "--tag", "travel"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("v-food") and "FAILED" in out[0] and "food 0.80, travel 0.70" in out[0]
    assert main(["list", "--db", str(db), "--review", "passed", "--json"]) == 0
    assert [json.loads(line)["video_id"] for line in capsys.readouterr().out.splitlines()] == ["v-dance"]
    assert main(["list", "--db", str(db), "--tag", "bad'tag"]) == 2


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"cat.{fmt}"
    assert main(["export", "--db", str(db), "--format", fmt, "--out", str(out)]) == 0
    table = pq.read_table(out) if fmt == "parquet" else pcsv.read_csv(out)
    assert table.num_rows == 3 and {"video_id", "tags", "tag_scores", "review_passed", "cf_vector",
                                    "cf_model_version"} <= set(table.column_names)
    rows = {r["video_id"]: r for r in table.to_pylist()}
    tags = rows["v-food"]["tags"] if fmt == "parquet" else json.loads(rows["v-food"]["tags"])
    cf = rows["v-food"]["cf_vector"] if fmt == "parquet" else json.loads(rows["v-food"]["cf_vector"])
    assert tags == ["food", "travel"] and cf == [1.0] * 4 and rows["v-food"]["review_passed"] is False


def test_failures_list_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "db")
    assert main(["failures", "--db", db]) == 0 and "0 failures" in capsys.readouterr().out
    assert not Path(db).exists()  # listing created nothing
    log = FailureLog(db)
    log.record("/v/a.mp4", None, "CorruptMedia", "no frame")
    log.record("/v/b.mp4", "b", "DecodeTimeout", "60 s")
    assert main(["failures", "--db", db, "--json"]) == 0
    assert {json.loads(x)["uri"] for x in capsys.readouterr().out.splitlines()} == {"/v/a.mp4", "/v/b.mp4"}
    assert main(["failures", "clear", "/v/a.mp4", "--db", db]) == 0 and "1 failures cleared" in capsys.readouterr().out
    assert set(FailureLog(db).known) == {"/v/b.mp4"}
    assert main(["failures", "clear", "--db", db]) == 0 and "1 failures cleared" in capsys.readouterr().out
    assert FailureLog(db).known == {}
