"""One TOML config file for ingest, serve and backfill; ``--help`` shows every default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tagging.cli.main import build_parser, main, parse_args

CONFIG = """
[common]
db = "/srv/catalog.lancedb"
cb2cf-model = "models/video-cb2cf"
num_frames = 6

[serve]
space = "cf_space"
port = 9001
root = ["/srv/uploads", "/srv/more"]

[backfill]
workers = 3
engine = "local"

[ingest]
no_ocr = true
"""


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TAGGING_DB", "TAGGING_CB2CF_MODEL", "TAGGING_CF_SPACE", "TAGGING_TAG_HEAD", "TAGGING_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "tagging.toml"
    path.write_text(CONFIG)
    return path


def test_the_three_commands_read_one_file(config: Path) -> None:
    serve = parse_args(["serve", "--config", str(config)])
    assert (serve.db, serve.cb2cf_model, serve.num_frames) == ("/srv/catalog.lancedb", "models/video-cb2cf", 6)
    assert (serve.space, serve.port, serve.root) == ("cf_space", 9001, ["/srv/uploads", "/srv/more"])
    backfill = parse_args(["--config", str(config), "backfill", "videos/"])  # before the command works too
    assert (backfill.db, backfill.workers, backfill.num_frames) == ("/srv/catalog.lancedb", 3, 6)
    ingest = parse_args(["ingest", "a.mp4", "--config", str(config)])
    assert ingest.no_ocr is True and ingest.db == "/srv/catalog.lancedb"


def test_command_line_and_environment_win(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse_args(["serve", "--config", str(config), "--port", "9100", "--root", "/x"])
    assert args.port == 9100 and args.root == ["/srv/uploads", "/srv/more", "/x"]  # --root adds to the file's roots
    monkeypatch.setenv("TAGGING_CF_SPACE", "env_space")
    monkeypatch.setenv("TAGGING_CONFIG", str(config))  # found without --config
    args = parse_args(["serve"])
    assert args.space == "env_space" and args.port == 9001


def test_the_help_shows_the_configured_defaults(config: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parse_args(["serve", "--config", str(config), "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: 9001" in out and "default: cf_space" in out


@pytest.mark.parametrize("text, match", [("[serve]\nprot = 1\n", "prot: not an option"),
                                         ("[common]\nnope = 1\n", "nope: not an option"),
                                         ("[deploy]\nx = 1\n", "unknown section"),
                                         ("[backfill]\nengine = 'spark'\n", "expected one of"),
                                         ("[serve\n", "not valid TOML")])
def test_a_bad_config_is_refused_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and str(path) in err[0]
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2


def test_help_shows_every_default() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter, name
        for action in parser._actions:
            if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
                assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings}: no help"
