"""``cb2cf`` command line: a thin layer over the library.

Subcommands: ``benchmark``, ``train-space``, ``import-space``, ``train``, ``predict``, ``simulate``.
Feature tables are ``.npz`` files (see :func:`cb2cf.features.save_features_npz`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from cb2cf.errors import CB2CFError

logger = logging.getLogger(__name__)


def _landmarks(a: argparse.Namespace) -> dict[str, int]:
    """``--kernel-landmarks`` as a TrainConfig override (nothing when left out: TrainConfig's default)."""
    return {} if a.kernel_landmarks is None else {"kernel_landmarks": a.kernel_landmarks}


def _benchmark(a: argparse.Namespace) -> int:
    from cb2cf.bench.benchmark import format_table, run_seeds, write_json
    from cb2cf.bench.methods import PEER_NAMES
    from cb2cf.train import TrainConfig

    seeds = tuple(a.seeds) if a.seeds else (a.seed,)
    cfg = TrainConfig(name="cb2cf-ml-latest-small", seed=seeds[0], max_seconds=a.max_seconds, **_landmarks(a))
    res = run_seeds(a.dataset, seeds, train_config=cfg, cache_dir=a.cache_dir, show_progress=a.progress,
                    drop_views=tuple(a.drop_views), peers=tuple(a.peers) if a.peers is not None else PEER_NAMES)
    ok = [r for r in res["runs"] if "results" in r]
    print(format_table(ok[0] if len(seeds) == 1 and ok else res["summary"]))
    if a.out:
        write_json(res, a.out)
        print(f"wrote {a.out}")
    if a.save_model and res["_model"] is not None:
        res["_model"].save(a.save_model)
        res["_space"].save(Path(a.save_model) / "space")  # the warm CF space it predicts into
        print(f"saved model {res['_model'].version} (+ space {res['_space'].ref}) to {a.save_model}")
    return 0 if ok else 1


def _train_space(a: argparse.Namespace) -> int:
    from cb2cf.interactions import read_log, to_matrix, validate_log
    from cb2cf.space import SpaceConfig, train_space

    df, report = validate_log(read_log(a.log), duplicates=a.duplicates)
    cfg = SpaceConfig(algorithm=a.algorithm, factors=a.factors, iterations=a.iterations, seed=a.seed,
                      binary=not a.weighted)
    space = train_space(to_matrix(df), cfg, space_id=a.space_id, show_progress=a.progress)
    space.meta["log_report"] = report
    space.save(a.out)
    print(f"saved space {space.ref} ({len(space.user_ids)} users, {len(space.item_ids)} items, "
          f"dim {space.dim}) to {a.out}; {report}")
    return 0


def _import_space(a: argparse.Namespace) -> int:
    from cb2cf.space import import_space

    space = import_space(a.space_id, a.users, a.items, version=a.version, id_column=a.id_column,
                         vector_column=a.vector_column, users_table=a.users_table, items_table=a.items_table)
    space.save(a.out)
    print(f"saved space {space.ref} to {a.out}")
    return 0


def _train(a: argparse.Namespace) -> int:
    from cb2cf.errors import TrainingError
    from cb2cf.features import load_features_npz, select_rows
    from cb2cf.interactions import read_log, to_matrix, validate_log
    from cb2cf.metrics import validation_problems
    from cb2cf.space import CFSpace
    from cb2cf.train import ItemSet, TrainConfig, train_cb2cf

    space = CFSpace.load(a.space)
    ids, feats, masks, specs = load_features_npz(a.features)
    warm = np.isin(ids, space.item_ids)
    if not warm.any():
        raise CB2CFError(f"{a.features}: no item of the feature table is in space {space.ref}")
    # every drop is counted, printed and kept in the manifest
    log, report = validate_log(read_log(a.interactions), known_users=space.user_ids, known_items=ids[warm],
                               duplicates=a.duplicates, drop_unknown=True)
    report |= {"feature_rows": int(len(ids)), "feature_rows_not_in_space": int((~warm).sum()),
               "space_items_without_features": int(len(space.item_ids) - warm.sum())}
    rng = np.random.default_rng(a.seed)
    rows = np.flatnonzero(warm)
    rng.shuffle(rows)
    n_val = int(round(a.val_frac * len(rows)))
    val_rows, tr_rows = np.sort(rows[:n_val]), np.sort(rows[n_val:])

    def items(r: np.ndarray) -> ItemSet:
        f, m = select_rows(feats, masks, r)
        sub = log.loc[log["item_id"].isin(set(ids[r]))]
        return ItemSet(ids[r], f, m, to_matrix(sub, space.user_ids, ids[r], binary=True).matrix)

    cfg = TrainConfig(name=a.name, seed=a.seed, max_seconds=a.max_seconds, **_landmarks(a))
    val = items(val_rows) if n_val else None
    problems = validation_problems(val, cfg.min_val_items, cfg.min_val_users)
    counts = f"{len(ids)} feature rows, {len(rows)} in the space: {len(tr_rows)} train / {n_val} validation items"
    if problems and not a.allow_unvalidated:
        raise TrainingError(f"catalog too small to validate ({counts}; {'; '.join(problems)}): a model selected on "
                            f"so few items is not fit to deploy. Add items or raise --val-frac; "
                            f"--allow-unvalidated saves it anyway, marked not fit to deploy")
    model, hist = train_cb2cf(items(tr_rows), space, cfg, val, specs, a.progress)
    model.manifest["training_data"]["report"] = report
    model.save(a.out)
    print(f"saved {model.version} to {a.out} (best epoch {hist['best_epoch']}, stopped by {hist['stopped_by']}, "
          f"{hist['seconds']:.1f}s); {counts}; {report}")
    if problems:
        print(f"NOT FIT TO DEPLOY: {'; '.join(problems)} ({counts}); the manifest says fit_to_deploy: false")
    return 0


def _predict(a: argparse.Namespace) -> int:
    from cb2cf.errors import ContentError
    from cb2cf.features import load_features_npz
    from cb2cf.model import CB2CF
    from cb2cf.predictor import Predictor
    from cb2cf.space import CFSpace

    ids, feats, masks, specs = load_features_npz(a.features)
    model = CB2CF.load(a.model, expected_views={s.name: s for s in specs} if a.strict else None)
    try:
        vecs, placed = model.try_predict(feats, masks, ids=ids)  # bad rows raise naming their ids
    except ContentError as exc:
        raise ContentError(f"{a.features}: {exc}") from None
    out: dict = {"model_version": model.version, "items": []}
    pred = Predictor(CFSpace.load(a.space), model) if a.space else None
    for i, item in enumerate(ids):
        if not placed[i]:
            out["items"].append({"id": str(item), "cf_vector": None, "error": "none of the model's views is present"})
            continue
        rec: dict = {"id": str(item), "cf_vector": vecs[i].round(6).tolist()}
        if pred is not None:
            rec["seed_users"] = pred.seed_users(vecs[i], a.k).to_list()
            rec["similar_items"] = pred.similar_items(vecs[i], a.k).to_list()
        out["items"].append(rec)
    text = json.dumps(out)
    if a.out:
        Path(a.out).write_text(text)
        print(f"wrote {len(ids)} predictions to {a.out}")
    else:
        print(text)
    return 0


def _simulate(a: argparse.Namespace) -> int:
    from cb2cf.bench.simreport import format_table, metrics, plot, result, summary, write_json
    from cb2cf.bench.simulate import SimConfig, ablation, build_world, simulate
    from cb2cf.model import CB2CF

    cfg = SimConfig(cohort_size=a.cohort_size)
    if a.max_seconds is not None:
        cfg.max_train_seconds = a.max_seconds
    model = CB2CF.load(a.model) if a.model else None
    results, budget, extra = [], {}, {}
    for i, seed in enumerate(a.seed):
        world = build_world(a.dataset, seed, cfg, a.cache_dir, model)
        traces = simulate(world, cfg, seed)
        results.append(result(a.dataset, seed, world, traces))
        for name, trace in ablation(world, cfg, seed).items():
            extra.setdefault(f"{name} (ablation)", []).append(metrics(world, trace))
        budget = {k: int(t.E.sum()) for k, t in traces.items()}
        logger.info("seed %d: %s", seed, {k: round(v, 1) for k, v in world.seconds.items()})
        out = Path(a.json) if a.json else None
        if out is not None and len(a.seed) > 1:
            out = out.with_name(f"{out.stem}-seed{seed}{out.suffix}")
        if out is not None:
            write_json(results[-1], out)
            print(f"wrote {out}")
        if a.plot and (i == 0 or out is not None):
            png = plot(traces, (out or Path(f"cb2cf-simulate-seed{seed}.json")).with_suffix(".png"),
                       f"{Path(a.dataset).name}, seed {seed}")
            print(f"wrote {png}")
    print(format_table(results, budget, extra))
    if a.json and len(a.seed) > 1:
        write_json({"dataset": str(a.dataset), "seeds": list(a.seed), "summary": summary(results)}, a.json)
        print(f"wrote {a.json}")
    return 0


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    """The ``simulate`` subcommand."""
    s = sub.add_parser("simulate", help="closed-loop cold-start benchmark (exposure ladder) on a MovieLens directory")
    s.add_argument("--dataset", required=True)
    s.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="one or more seeds; with several, --json gets one file per seed plus the mean/std summary")
    s.add_argument("--json", help="write {dataset, seed, methods} as JSON here")
    s.add_argument("--plot", action="store_true", help="save audience reached vs impressions as PNG next to the JSON")
    s.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cb2cf"), help="text-embedding cache")
    s.add_argument("--model", help="a saved CB2CF model (used when trained for the split's space, else one is trained)")
    s.add_argument("--max-seconds", type=float, default=None,
                   help="guard on CB2CF training time (default: TrainConfig's; training stops on epochs and validation)")
    s.add_argument("--cohort-size", type=int, default=100, help="items compared together at each stage")
    s.set_defaults(fn=_simulate)


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    """The ``benchmark`` subcommand."""
    b = sub.add_parser("benchmark", help="cold-start benchmark on a MovieLens 'latest' directory")
    b.add_argument("--dataset", required=True)
    b.add_argument("--out", help="write the results as JSON here")
    b.add_argument("--seed", type=int, default=0, help="one seed (see --seeds)")
    b.add_argument("--seeds", type=int, nargs="+", help="seeds of the split and of every method's training: "
                   "tables show mean ± std over them")
    b.add_argument("--drop-views", nargs="*", default=[], choices=("title", "tags", "genres", "year"),
                   help="leave these content views out (e.g. tags: the second dataset, titles/genres/years only)")
    b.add_argument("--peers", nargs="*", choices=("DropoutNet", "Heater", "CLCRec", "ALDI"),
                   help="which published peers run (default: all)")
    b.add_argument("--save-model", help="save the trained CB2CF model (of the first seed) to this directory")
    b.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cb2cf"), help="text-embedding cache")
    b.add_argument("--max-seconds", type=float, default=3600.0,
                   help="guard on CB2CF training time (training stops on epochs/validation; reported if it fires)")
    b.add_argument("--kernel-landmarks", type=int, default=None,
                   help="landmark items of the kernel-ridge start (0: linear start only); default: TrainConfig's; "
                        "the saved model stores one content row (plus its projection) per landmark")
    b.set_defaults(fn=_benchmark)


def _add_train_space(sub: argparse._SubParsersAction) -> None:
    """The ``train-space`` subcommand."""
    s = sub.add_parser("train-space", help="train a CF space (implicit ALS/BPR) from an interaction log")
    s.add_argument("--log", required=True, help="CSV/parquet: user_id,item_id[,weight][,timestamp]")
    s.add_argument("--out", required=True)
    s.add_argument("--space-id", default="cf")
    s.add_argument("--algorithm", choices=("als", "bpr"), default="als")
    s.add_argument("--factors", type=int, default=64)
    s.add_argument("--iterations", type=int, default=20)
    s.add_argument("--weighted", action="store_true", help="use weights instead of binary interactions")
    s.add_argument("--duplicates", choices=("error", "sum", "max", "last"), default="error")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_train_space)


def _add_import_space(sub: argparse._SubParsersAction) -> None:
    """The ``import-space`` subcommand."""
    i = sub.add_parser("import-space", help="import user/item vectors (parquet, npz, npy, LanceDB)")
    i.add_argument("--users", required=True)
    i.add_argument("--items", required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--space-id", required=True)
    i.add_argument("--version", default="")
    i.add_argument("--id-column", default="id")
    i.add_argument("--vector-column", default="vector")
    i.add_argument("--users-table")
    i.add_argument("--items-table")
    i.set_defaults(fn=_import_space)


def _add_train(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand."""
    t = sub.add_parser("train", help="train CB2CF: feature table + CF space + interaction log")
    t.add_argument("--features", required=True, help=".npz feature table")
    t.add_argument("--space", required=True, help="CF space directory")
    t.add_argument("--interactions", required=True, help="interaction log (for ranking loss and validation)")
    t.add_argument("--out", required=True, help="models/<name>")
    t.add_argument("--name", default="cb2cf")
    t.add_argument("--val-frac", type=float, default=0.1, help="warm items held out as cold validation")
    t.add_argument("--duplicates", choices=("error", "sum", "max", "last"), default="error")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-seconds", type=float, default=3600.0, help="guard on training time (reported if it fires)")
    t.add_argument("--allow-unvalidated", action="store_true",
                   help="save a model even when the validation split is too small to select it (marked not fit to deploy)")
    t.add_argument("--kernel-landmarks", type=int, default=None,
                   help="landmark items of the kernel-ridge start (0: linear start only); default: TrainConfig's; "
                        "the saved model stores one content row (plus its projection) per landmark")
    t.set_defaults(fn=_train)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    """The ``predict`` subcommand."""
    q = sub.add_parser("predict", help="predict CF vectors (and seed users / similar items)")
    q.add_argument("--model", required=True)
    q.add_argument("--features", required=True)
    q.add_argument("--space", help="CF space directory: adds seed users and similar items")
    q.add_argument("-k", type=int, default=10)
    q.add_argument("--strict", action="store_true", help="refuse unless views and extractor ids match exactly")
    q.add_argument("--out")
    q.set_defaults(fn=_predict)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``cb2cf``."""
    p = argparse.ArgumentParser(prog="cb2cf", description="Place content-only items in a CF space.")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in (_add_benchmark, _add_train_space, _add_import_space, _add_train, _add_predict, _add_simulate):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cb2cf`` console script. Returns the exit code."""
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t0 = time.time()
    try:
        rc = a.fn(a)
    except CB2CFError as exc:
        print(f"cb2cf: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    logger.info("%s done in %.1fs", a.cmd, time.time() - t0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
