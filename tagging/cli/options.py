"""Options shared by the commands, each defined once: the catalog, the pipeline, the decode limits.

Defaults come from the config dataclasses and environment variables (``TAGGING_DB``,
``TAGGING_CB2CF_MODEL``, ``TAGGING_TAG_HEAD``); ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

HELP_FORMATTER = argparse.ArgumentDefaultsHelpFormatter


class _StorageOption(argparse.Action):
    """``KEY=VALUE``, repeatable: merged into ``$TAGGING_STORAGE_OPTIONS`` (read by every catalog this process opens)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any,
                 option_string: str | None = None) -> None:
        import json

        from tagging.store.lance import STORAGE_OPTIONS_ENV

        key, sep, val = str(value).partition("=")
        if not sep or not key:
            parser.error(f"{option_string} wants KEY=VALUE, not {value!r}")
        opts = json.loads(os.environ.get(STORAGE_OPTIONS_ENV) or "{}")
        opts[key] = val
        os.environ[STORAGE_OPTIONS_ENV] = json.dumps(opts)
        setattr(namespace, self.dest, opts)


def add_db_arg(p: argparse.ArgumentParser) -> None:
    """``--db`` (the catalog: a LanceDB directory or URI) and ``--storage-option KEY=VALUE`` for object stores."""
    from tagging.store.catalog import default_db

    p.add_argument("--db", default=default_db(),
                   help="the catalog: a LanceDB directory or URI such as s3://bucket/catalog ($TAGGING_DB)")
    p.add_argument("--storage-option", action=_StorageOption, metavar="KEY=VALUE",
                   help="object-store option for --db, repeatable (e.g. region=eu-west-1; $TAGGING_STORAGE_OPTIONS as JSON)")


def add_decode_args(p: argparse.ArgumentParser) -> None:
    """``--decode-timeout`` and ``--decode-memory-mb``: limits of one isolated decode."""
    from tagging.serving.isolation import DEFAULT_DECODE_MEMORY_MB, DEFAULT_DECODE_TIMEOUT_S

    p.add_argument("--decode-timeout", type=float, default=DEFAULT_DECODE_TIMEOUT_S, help="seconds one decode may take")
    p.add_argument("--decode-memory-mb", type=int, default=DEFAULT_DECODE_MEMORY_MB,
                   help="address-space limit of a decode process")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda``: where the models run (``auto``: CUDA when the model's runtime sees a GPU)."""
    from tagging.runtime import DEVICE_ENV, DEVICES

    p.add_argument("--device", choices=DEVICES, default=os.environ.get(DEVICE_ENV, "auto"),
                   help=f"where the models run (${DEVICE_ENV})")


def add_pipeline_args(p: argparse.ArgumentParser, tag_head: bool = True) -> None:
    """Add the options that configure a :class:`~tagging.pipeline.Pipeline`.

    Args:
        p: The (sub)command parser.
        tag_head: Add ``--tag-head`` (the tag commands name their head otherwise).
    """
    from tagging.pipeline import PipelineConfig

    p.add_argument("--num-frames", type=int, default=PipelineConfig.num_frames, help="frames sampled per video")
    p.add_argument("--top-k", type=int, default=5, help="tags kept per video")
    p.add_argument("--taxonomy", help="taxonomy JSON file (default: the packaged one)")
    p.add_argument("--clip-model", help="use CLIP (hub id or local dir) instead of EfficientNet for frames")
    p.add_argument("--text-extractor", default=PipelineConfig.text_extractor,
                   help="text model of captions, transcripts and on-screen text (text-e5, text-muse, text-minilm)")
    p.add_argument("--cb2cf-model", default=os.environ.get("TAGGING_CB2CF_MODEL"), help="CB2CF model dir: fill the CF vector")
    if tag_head:
        p.add_argument("--tag-head", default=os.environ.get("TAGGING_TAG_HEAD"), help="trained tag head dir (tagging train-tags)")
    p.add_argument("--no-speech", action="store_true", help="skip speech recognition")
    p.add_argument("--no-ocr", action="store_true", help="skip on-screen text recognition")
    p.add_argument("--policy-screen", choices=("off", "on", "auto"), default="off", help="NudeNet explicit-imagery screen")
    add_device_arg(p)


def pipeline_config(args: argparse.Namespace) -> Any:
    """Build the ``PipelineConfig`` that :func:`add_pipeline_args` options describe (and apply ``--device``)."""
    from tagging.pipeline import PipelineConfig
    from tagging.runtime import set_device

    set_device(getattr(args, "device", "auto"))

    cfg = PipelineConfig(num_frames=args.num_frames, taxonomy=args.taxonomy, cb2cf_model=args.cb2cf_model,
                         tag_head=getattr(args, "tag_head", None))
    cfg.text_extractor = getattr(args, "text_extractor", None) or cfg.text_extractor
    if args.clip_model:
        cfg.frames_extractor, cfg.frames_config = "clip", {"model": args.clip_model}
    cfg.tagger.top_k = args.top_k
    cfg.enrich.speech, cfg.enrich.ocr, cfg.enrich.policy_screen = not args.no_speech, not args.no_ocr, args.policy_screen
    return cfg


# ---------------------------------------------------------------- the config file (TOML)
CONFIG_COMMANDS = ("ingest", "serve", "backfill")
"""Commands whose option defaults a config file sets: ``[common]`` for all of them, then ``[<command>]``."""
ENV_OPTIONS = {"db": "TAGGING_DB", "cb2cf_model": "TAGGING_CB2CF_MODEL", "tag_head": "TAGGING_TAG_HEAD",
               "space": "TAGGING_CF_SPACE"}
"""Options with an environment variable; a set variable wins over the config file."""


def add_config_arg(p: argparse.ArgumentParser) -> None:
    """``--config``: a TOML file of option defaults (``$TAGGING_CONFIG``)."""
    p.add_argument("--config", default=os.environ.get("TAGGING_CONFIG"),
                   help="TOML file of option defaults: [common] for ingest, serve and backfill, then [ingest], [serve], "
                        "[backfill]; the command line wins over it, environment variables too ($TAGGING_CONFIG)")


def config_path(argv: list[str]) -> str | None:
    """The config file named by ``--config`` anywhere in ``argv``, else ``$TAGGING_CONFIG``."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    return known.config or os.environ.get("TAGGING_CONFIG") or None


def read_config(path: str) -> dict[str, dict[str, Any]]:
    """The sections of a config file, keys as option names with ``_`` (``cb2cf-model`` = ``cb2cf_model``).

    Raises:
        TaggingError: The file cannot be read, is not TOML, or has a section other than
            ``common`` and :data:`CONFIG_COMMANDS`, or a value outside a section.
    """
    import tomllib
    from pathlib import Path

    from tagging.errors import TaggingError

    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise TaggingError(path, f"cannot read the config file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TaggingError(path, f"config file is not valid TOML: {exc}") from None
    out: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section not in ("common", *CONFIG_COMMANDS) or not isinstance(values, dict):
            raise TaggingError(path, f"unknown section [{section}]; expected [common], "
                                     + ", ".join(f"[{c}]" for c in CONFIG_COMMANDS))
        out[section] = {k.replace("-", "_"): v for k, v in values.items()}
    return out


def apply_config(commands: dict[str, argparse.ArgumentParser], config: dict[str, dict[str, Any]], path: str) -> None:
    """Make the config file's values the defaults of the commands' options (``--help`` then shows them).

    Raises:
        TaggingError: A key is no option of the command(s) it is given for, or a value is not
            one of the option's choices.
    """
    from tagging.errors import TaggingError

    common = config.get("common", {})
    known = {a.dest for name in CONFIG_COMMANDS for a in commands[name]._actions}
    for key in common:
        if key not in known:
            raise TaggingError(path, f"[common] {key}: not an option of {', '.join(CONFIG_COMMANDS)}")
    for name in CONFIG_COMMANDS:
        actions = {a.dest: a for a in commands[name]._actions}
        own = config.get(name, {})
        for key, value in {**common, **own}.items():
            if key not in actions:
                if key in own:
                    raise TaggingError(path, f"[{name}] {key}: not an option of tagging {name}")
                continue  # a [common] key another command uses
            if key in ENV_OPTIONS and os.environ.get(ENV_OPTIONS[key]):
                continue
            choices = actions[key].choices
            if choices is not None and value not in choices:
                raise TaggingError(path, f"{key} = {value!r}: expected one of {list(choices)}")
            commands[name].set_defaults(**{key: list(value) if isinstance(value, list) else value})
