"""``reiqa demo``: the whole demo, start to end (the steps below, in order).

1. **Training pictures**: ``synthetic:N`` dead-leaves pictures (made once,
   cached; :mod:`reiqa_jax.data.synthetic`) and scikit-image's bundled
   pictures that are not everyday photographs (``configs/demo.py``). No test
   or validation photo is trained on.
2. **Train** ``configs/demo.py`` (the official recipe scaled down to a 2-core
   CPU; its docstring gives each value against the official one), keeping
   checkpoints at 25 and 50 % of the steps.
3. **The labelled set** (:mod:`.iqa_set`): every held-out test photo
   (:mod:`.photos`), pristine and at 5 levels of 10 kinds whose levels are
   monotone in severity (:mod:`.kinds`).
4. **Features and the protocol** (:mod:`.measure`) for the encoder at 0, 25,
   50 and 100 % of training, the same network at random init for 3 other
   seeds, and classical statistics (:mod:`.classical`): 20 splits by scene.
5. **Scores**: a ``reiqa score`` model folder (the trained encoder and the
   protocol's regressor refitted on every scene but the example photo's),
   which scores the example photo's pristine picture and its 50 distorted
   versions.
6. **Outputs** in the workdir (:mod:`.report`): ``demo_report.json``,
   ``demo.png``, ``model/``, ``scored_examples.csv``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from reiqa_jax.demo import classical, kinds as kinds_lib, photos as photos_lib
from reiqa_jax.demo import report as report_lib

RANDOM_SEEDS = (1001, 1002, 1003)
EXAMPLE_PHOTO = "astronaut"


def _log(message: str) -> None:
    print(f"reiqa demo: {message}", file=sys.stderr, flush=True)


def run_demo(workdir, **options) -> dict:
    """Runs the demo (module docstring) in ``workdir``; returns the report dict.

    One demo at a time in a workdir (``DEMO_LOCK``, as ``reiqa train``'s lock):
    a second is refused in one line before it writes anything. options: those
    of :func:`_run_demo`.
    """
    from reiqa_jax.demo import training
    from reiqa_jax.workdir import RunLock

    workdir = Path(workdir).absolute()
    training.check_workdir(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # a second demo: WorkdirError (one line, exit status 2) before it writes anything
    with RunLock(workdir, program="reiqa demo", name=training.DEMO_LOCK):
        return _run_demo(workdir, **options)


def _run_demo(workdir: Path, *, train_steps: int | None = None, seed: int = 0,
              overrides: dict | None = None, photos=photos_lib.TEST, kinds=kinds_lib.KINDS,
              n_splits: int = 20, random_seeds=RANDOM_SEEDS, example_photo: str = EXAMPLE_PHOTO,
              quiet: bool = False) -> dict:
    """The demo in a checked and locked ``workdir``.

    train_steps: the run's length (default: ``configs/demo.py``'s; the warmup
    stays the same fraction of it). seed: the training seed. overrides:
    further ``--config`` values. photos / kinds / n_splits / random_seeds:
    the measurement (smaller is quicker and noisier).
    """
    from reiqa_jax.data.sources import training_images
    from reiqa_jax.demo import measure, training
    from reiqa_jax.demo.iqa_set import make_labelled_set

    started = time.time()
    seconds = {}
    load = [os.getloadavg()[0]]
    config = training.demo_config(overrides)
    config.seed = seed
    if train_steps is not None and train_steps != config.num_steps:
        fraction = config.warmup_epochs * training.steps_per_epoch(config) / config.num_steps
        training.set_recipe(config, steps=train_steps, warmup_fraction=fraction)
    if example_photo not in photos:
        raise training.DemoError(f"the example photo {example_photo} is not one of the photos")
    train_dir = workdir / "train"
    training.prepare(config, train_dir)

    _log(f"1/5 training pictures: {config.data}")
    t = time.time()
    training_images(config.data)  # makes the synthetic pictures (cached)
    seconds["training_pictures"] = time.time() - t

    _log(f"2/5 training configs/demo.py for {config.num_steps} steps (seed {seed})")
    t = time.time()
    training.train(config, train_dir)
    seconds["train"] = time.time() - t
    load.append(os.getloadavg()[0])

    t = time.time()
    _log(f"3/5 labelled set: {len(photos)} held-out photos x ({len(kinds)} kinds x 5 levels "
         f"+ pristine)")
    labelled = make_labelled_set(workdir / "iqa_images", photos, kinds)
    seconds["labelled_set"] = time.time() - t

    t = time.time()
    _log(f"4/5 features and the protocol ({n_splits} splits by scene): trained encoder at "
         f"{', '.join(f'{f:.0%}' for f in training.CURVE)} of training, random init "
         f"(seeds {', '.join(map(str, random_seeds))}), classical statistics")
    encoders = training.curve_encoders(config, train_dir, workdir / "curve")
    metrics_rows = [json.loads(line) for line in
                    (train_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    window = max(config.log_every_steps, config.num_steps // 20)
    curve, final_features = [], None
    for step, ckpt in encoders.items():
        x = measure.encoder_features(labelled.paths, ckpt)
        m = measure.measure(x, labelled, n_splits=n_splits)
        curve.append(dict(step=step, fraction=step / config.num_steps,
                          **report_lib.metrics_near(metrics_rows, step, window), **m.summary()))
        if step == config.num_steps:
            final_features, final_measured = x, m
    arch = {"depth": config.model.depth, "width": config.model.width,
            "feat_dim": config.model.feat_dim}
    random = {}
    for s in random_seeds:
        ckpt = training.random_encoder(workdir / "random_init" / f"seed_{s}", arch, s)
        random[s] = measure.measure(measure.encoder_features(labelled.paths, ckpt), labelled,
                                    n_splits=n_splits).summary()
    statistics = {name: measure.measure(x, labelled, n_splits=n_splits).summary()
                  for name, x in classical.statistics(labelled.paths).items()}
    seconds["measure"] = time.time() - t

    t = time.time()
    _log(f"5/5 model folder and `reiqa score` of {example_photo}")
    keep = labelled.photos != example_photo
    fit_set = labelled.subset([p for p in photos if p != example_photo])
    model_dir = measure.quality_model(final_features[keep], fit_set, final_measured,
                                      encoders[config.num_steps], workdir / "model")
    example_idx = np.flatnonzero(~keep)
    scored = measure.score([labelled.paths[i] for i in example_idx], model_dir,
                           workdir / "scored_examples.csv")
    by_path = dict(zip(example_idx.tolist(), scored))
    scores = {"pristine": by_path[int(labelled.series(example_photo, kinds[0])[0])]}
    for kind in kinds:
        scores[kind] = [by_path[int(i)] for i in labelled.series(example_photo, kind)[1:]]
    seconds["score"] = time.time() - t
    seconds["total"] = time.time() - started
    load.append(os.getloadavg()[0])

    trained = curve[-1]
    result = final_measured.result
    median = result.splits[result.median_split]
    combined = statistics["combined"]["per_split_srcc"]
    report = {
        "format": report_lib.FORMAT, "version": 1, "created": report_lib.now_utc(),
        "machine": dict(report_lib.machine(), load_average=[round(v, 2) for v in load]),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "train_seed": seed, "train_steps": config.num_steps, "train_data": config.data,
        "config": json.loads(config.to_json()),
        "photos": {"test": list(photos), "validation_recipe_chosen_on": list(
            photos_lib.VALIDATION), "example": example_photo},
        "n_scenes": int(np.unique(labelled.scenes).size), "kinds": list(kinds), "levels": 5,
        "labels": "5 for the pristine picture, 4 - level for a distorted one",
        "n_images": len(labelled), "n_splits": n_splits,
        "test_scenes_per_split": len(final_measured.test_scenes[0]),
        "curve": curve, "trained": trained,
        "random_init": report_lib.random_summary(random),
        "classical": statistics,
        "splits_ahead_of_classical": int(sum(a > b for a, b in
                                             zip(trained["per_split_srcc"], combined))),
        "test_scenes": final_measured.test_scenes,
        "trained_median_split": {
            "scenes": sorted(set(labelled.scenes[median.test].tolist())),
            "true": labelled.scores[median.test].tolist(),
            "predicted": [float(v) for v in median.test_prediction]},
        "example": report_lib.example_summary(example_photo, scores, kinds),
    }
    report["margin_over_random"] = trained["srcc"] - report["random_init"]["srcc_mean"]
    report_lib.write_report(report, workdir / "demo_report.json")
    report_lib.plot(report, metrics_rows, workdir / "demo.png")
    if not quiet:
        report_lib.print_summary(report, workdir)
    return report
