"""The catalog URI is any LanceDB URI; storage options pass through to LanceDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from s3_server import S3_BUCKET, s3_keys
from test_catalog import row as _full_row  # the same rows as the catalog tests

from tagging.errors import CatalogError
from tagging.store.catalog import Catalog, CatalogDims
from tagging.store.failures import FailureLog
from tagging.store.lance import STORAGE_OPTIONS_ENV, storage_options

DIMS = CatalogDims(frames=8, audio=4, text=6, cf=3)


def _row(vid: str) -> dict:
    return {**_full_row(vid, 0), "source_uri": f"/x/{vid}.mp4"}


def test_file_uri_and_plain_dir_are_the_same_catalog(tmp_path: Path) -> None:
    Catalog(tmp_path / "db", dims=DIMS).upsert([_row("a"), _row("b")])
    cat = Catalog(f"file://{tmp_path / 'db'}", storage_options={})
    assert cat.count() == 2 and cat.get("a")["source_uri"] == "/x/a.mp4"


def test_storage_options_reach_lancedb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lancedb

    seen = []
    real = lancedb.connect
    monkeypatch.setattr(lancedb, "connect", lambda uri, **kw: seen.append(kw) or real(uri, **kw))
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps({"timeout": "30s"}))
    Catalog(tmp_path / "db", dims=DIMS).upsert([_row("a")])
    FailureLog(str(tmp_path / "db")).record("/x/bad.mp4", None, "CorruptMedia", "broken")
    Catalog(tmp_path / "db", storage_options={"timeout": "10s"})
    assert [kw["storage_options"] for kw in seen] == [{"timeout": "30s"}, {"timeout": "30s"}, {"timeout": "10s"}]


def test_bad_storage_options_are_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, "[1, 2]")
    with pytest.raises(CatalogError):
        storage_options()
    monkeypatch.delenv(STORAGE_OPTIONS_ENV)
    assert storage_options() is None


def test_cli_storage_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from tagging.cli.main import build_parser

    monkeypatch.delenv(STORAGE_OPTIONS_ENV, raising=False)
    args = build_parser().parse_args(["backfill", "dir", "--db", "s3://bucket/cat", "--storage-option", "region=eu-west-1",
                                      "--storage-option", "endpoint=http://127.0.0.1:9000"])
    assert args.db == "s3://bucket/cat"
    assert storage_options() == {"region": "eu-west-1", "endpoint": "http://127.0.0.1:9000"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ingest", "x.mp4", "--storage-option", "novalue"])


def test_storage_options_from_the_environment_reach_every_table(
    s3: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$TAGGING_STORAGE_OPTIONS`` is how decode processes and Ray workers get the options."""
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps(s3))
    uri = f"s3://{S3_BUCKET}/env"
    Catalog(uri, dims=DIMS).upsert([_row("a"), _row("b")])
    Catalog(uri, dims=DIMS).upsert([_row("b")])  # an upsert, not a second row
    FailureLog(uri).record("/x/bad.mp4", None, "CorruptMedia", "broken")
    reopened = Catalog(uri)
    assert reopened.count() == 2 and reopened.get("a")["source_uri"] == "/x/a.mp4"
    assert list(FailureLog(uri).known) == ["/x/bad.mp4"]
    assert {k.split("/")[1] for k in s3_keys(s3, "env/")} >= {"videos.lance"}
