"""The ``tagging`` command line as a user meets it: examples that parse, reads that create nothing,
a closed pipe that is not an error."""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from serving_helpers import FAKE_DIMS, _FakeResult

from tagging.cli.main import build_parser, main
from tagging.store.catalog import Catalog
from tagging.store.failures import FailureLog
from tagging.store.interactions import InteractionStore

ROOT = Path(__file__).resolve().parents[2]
CLI_MODULES = sorted((ROOT / "tagging" / "cli").glob("*.py"))


def docstring_examples() -> list[str]:
    """Every ``tagging ...`` command line in the CLI modules' docstrings."""
    out = []
    for path in CLI_MODULES:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        out += [line.strip() for line in doc.splitlines() if line.strip().startswith("tagging ")]
    return out


@pytest.mark.parametrize("example", docstring_examples())
def test_docstring_examples_parse(example: str) -> None:
    build_parser().parse_args(shlex.split(example, comments=True)[1:])  # argparse exits 2 on an unknown flag


def test_reading_a_missing_catalog_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "nonexistent"
    assert main(["show", "some-id", "--db", str(db)]) == 2
    assert "not in" in capsys.readouterr().err
    assert Catalog(db).get("some-id") is None and Catalog(db).count() == 0 and Catalog(db).ids() == set()
    assert FailureLog(str(db)).known == {}
    InteractionStore(db)
    assert not db.exists()


def test_a_refused_ingest_leaves_no_trace(tmp_path: Path, pipeline, clips: dict[str, Path]) -> None:
    db = tmp_path / "new.lancedb"
    catalog = Catalog(db, dims=pipeline.dims())  # as `tagging ingest` opens it
    report = pipeline.ingest([clips["random"], clips["empty"]], catalog)
    assert len(report.failures) == 2 and not report.results and catalog.count() == 0
    assert not db.exists()


def test_show_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    db = tmp_path / "db"
    Catalog(db, dims=FAKE_DIMS).upsert([_FakeResult("piped-1", "a caption", "x.mp4").to_row()])
    proc = subprocess.Popen([sys.executable, "-m", "tagging.cli", "show", "piped-1", "--db", str(db)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdout.close()  # `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
