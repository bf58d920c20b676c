"""The sweep that chose ``configs/demo.py``, measured on the VALIDATION photos only.

Each variant is ``configs/demo.py`` with some values changed; it trains (one
subprocess per variant, so a hung or killed run loses only itself), then the
encoders at 0, 25, 50 and 100 % of its steps go through the demo's
measurement on ``reiqa_jax.demo.photos.VALIDATION`` (never the test photos
``reiqa demo`` reports): median SRCC over 20 splits by scene, and the mean
SRCC within one series (a photo's pristine picture and one kind's 5 levels).
References on the same set: the random-init network (3 seeds: mean, min,
max) and the three classical statistics combined. For the final encoder and
the references, two more columns: per kind, the share of series whose
pristine picture is predicted above level 4 (the demo's example check on
every photo), and "one kind alone" (the protocol fitted and tested on one
kind's series only: whether the features carry that kind's severity at all).

  python benchmarks/demo_sweep.py --out out/sweep                # all variants
  python benchmarks/demo_sweep.py --out out/sweep --only lr0.3,lr1.2
  python benchmarks/demo_sweep.py --out out/sweep --record       # table -> RESULTS.md
  python benchmarks/demo_sweep.py --out out/sweep --eval-size 288x384  # measured larger

Finished variants are kept (``OUT/NAME/result.json``) and not run again.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

RANDOM_SEEDS = (1001, 1002, 1003)

# bundled pictures that are neither test photos nor natural photographs
PICTURES = ("hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel",
            "moon", "clock", "cell", "page", "text")

# name -> recipe: config overrides, steps, warmup fraction, queue in steps of keys.
BASE = dict(overrides={"data": "synthetic:2000:256x192", "learning_rate": 0.6}, steps=600,
            warmup=0.1, queue_steps=5, pictures=0)
VARIANTS = {
    "base": {},
    "lr0.3": dict(overrides={"learning_rate": 0.3}),
    "lr1.2": dict(overrides={"learning_rate": 1.2}),
    "lr2.4": dict(overrides={"learning_rate": 2.4}),
    "images200": dict(overrides={"data": "synthetic:200:256x192"}),
    "images500": dict(overrides={"data": "synthetic:500:256x192"}),
    "images5000": dict(overrides={"data": "synthetic:5000:256x192"}),
    # the queue spans an epoch: other versions of the same picture are negatives
    "images200+queue25": dict(overrides={"data": "synthetic:200:256x192"}, queue_steps=25),
    "batch16": dict(overrides={"batch_size": 16}, steps=300),
    "steps1200": dict(steps=1200),
    "ema0.999": dict(overrides={"ema_momentum": 0.999}),
    "queue20": dict(queue_steps=20),
    "official_lr12": dict(overrides={"learning_rate": 12.0}),
    "width0.5": dict(overrides={"model.width": 0.5}, steps=300),
    # the bundled pictures that are not test photos, in the training list
    "pictures11+images100": dict(overrides={"data": "synthetic:100:256x192"}, pictures=1),
    "pictures11x20": dict(pictures=20),
    "pictures11+images100 seed1": dict(overrides={"data": "synthetic:100:256x192", "seed": 1},
                                       pictures=1),
    "pictures11+images100 lr1.2": dict(overrides={"data": "synthetic:100:256x192",
                                                  "learning_rate": 1.2}, pictures=1),
    "pictures11+images100 lr2.4": dict(overrides={"data": "synthetic:100:256x192",
                                                  "learning_rate": 2.4}, pictures=1),
    "pictures11 only": dict(overrides={"data": ""}, pictures=1),
    "pictures11x4+images100": dict(overrides={"data": "synthetic:100:256x192"}, pictures=4),
    "pictures11+images100 900 steps": dict(overrides={"data": "synthetic:100:256x192"},
                                           pictures=1, steps=900),
}


def _mix(steps: int, batch: int = 8, weight: int = 1) -> str:
    """The data as the config writes it: 100 dead-leaves pictures and PICTURES
    (``weight`` times as often), repeated so that one epoch covers ``steps`` of
    ``batch`` (only the curve's checkpoints are written)."""
    k = -(-steps * batch // (100 + weight * len(PICTURES)))
    return f"synthetic:100:256x192*{k}+skimage:{','.join(PICTURES)}*{weight * k}"


for _steps, _lr, _seed in ((600, 0.6, 0), (600, 0.6, 1), (600, 1.2, 0), (600, 1.2, 1),
                           (900, 1.2, 0), (900, 1.2, 1), (600, 2.4, 0), (600, 2.4, 1),
                           (1200, 1.2, 0), (1200, 1.2, 1)):
    VARIANTS[f"mix steps{_steps} lr{_lr} seed{_seed}"] = dict(
        overrides={"data": _mix(_steps), "learning_rate": _lr, "seed": _seed}, steps=_steps)
# a network twice as wide for half the steps (about the same minutes)
for _seed in (0, 1):
    VARIANTS[f"mix width0.5 steps300 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(300), "learning_rate": 1.2, "seed": _seed, "model.width": 0.5},
        steps=300)
# ResNet-10 (one block per stage): cheaper steps, so more of them in the same minutes
for _steps, _lr, _seed in ((1200, 1.2, 0), (1200, 1.2, 1), (1800, 1.2, 0), (1800, 1.2, 1),
                           (1200, 2.4, 0), (1200, 2.4, 1), (2400, 1.2, 0), (2400, 1.2, 1)):
    VARIANTS[f"mix depth10 steps{_steps} lr{_lr} seed{_seed}"] = dict(
        overrides={"data": _mix(_steps), "learning_rate": _lr, "seed": _seed, "model.depth": 10},
        steps=_steps)
# ResNet-10, twice the pictures per step for half the steps (the same crop pairs)
for _seed in (0, 1):
    VARIANTS[f"mix depth10 batch16 steps900 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(900, batch=16), "learning_rate": 1.2, "seed": _seed,
                   "model.depth": 10, "batch_size": 16}, steps=900)
# ResNet-10, the official 11 distorted versions per picture (24 crop pairs) at
# half the pictures per step (the same 96 crop pairs per step)
for _seed in (0, 1):
    VARIANTS[f"mix depth10 naug11 batch4 steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800, batch=4), "learning_rate": 1.2, "seed": _seed,
                   "model.depth": 10, "batch_size": 4, "views.n_aug": 11}, steps=1800)
# ResNet-10, dead leaves with larger, smoother shapes (fewer tiny shapes and
# fewer grating / noise textures): more of the flat regions where photos show
# blocking, pixelation and pasted blocks
SMOOTH_LEAVES = {"r_min": 6.0, "texture_weights": (0.35, 0.35, 0.15, 0.15)}
for _seed in (0, 1):
    VARIANTS[f"mix depth10 smooth-leaves steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": _seed, "model.depth": 10},
        steps=1800, leaves=SMOOTH_LEAVES)
# ResNet-10, dead leaves whose shapes take their colours from one wide palette:
# a picture's colours no longer identify it, so matching the two crops of a
# pair by their colours alone stops working (the distortion they share is left)
for _seed in (0, 1):
    VARIANTS[f"mix depth10 palette256 steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": _seed, "model.depth": 10},
        steps=1800, leaves={"palette": 256})
# ResNet-10, the batch's other keys as negatives too (not the official loss): a
# picture's other distorted versions, which the queue never holds, become negatives
for _seed in (0, 1):
    VARIANTS[f"mix depth10 batchneg steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": _seed, "model.depth": 10,
                   "negatives": "queue+batch"}, steps=1800)
# ResNet-10, only the demo evaluation's 10 kinds drawn in training (jpeg,
# pixelation, colour blocks and the blurs in 3 of the 26 slots each, the rest in 2)
DEMO_KINDS = ("jpeg", "pixelate", "color_block", "gaussian_blur", "lens_blur", "motion_blur",
              "white_noise", "impulse_noise", "brighten", "darken")
for _seed in (0, 1):
    VARIANTS[f"mix depth10 demokinds steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": _seed, "model.depth": 10,
                   "views.ops": "only:" + ",".join(DEMO_KINDS)}, steps=1800)
# ResNet-10, pixelation alone in training: can this encoder learn its levels at
# all? With the official negatives, and with the picture's other versions (here
# other pixelation levels) as negatives too, which the task then must tell apart
for _neg, _tag in (("queue", ""), ("queue+batch", " batchneg")):
    VARIANTS[f"mix depth10 pixelate-only{_tag} steps1800 lr1.2 seed0"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": 0, "model.depth": 10,
                   "views.ops": "only:pixelate", "negatives": _neg}, steps=1800)
# ResNet-10, each distorted version's own pristine key (same picture, same
# scale) as one more negative (not the official loss): the one negative that
# differs from the query by the distortion alone
for _seed in (0, 1):
    VARIANTS[f"mix depth10 pristineneg steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": _seed, "model.depth": 10,
                   "negatives": "queue+pristine"}, steps=1800)
# ResNet-10, the picture's other versions at the same scale (pristine included,
# cut from the same crop region) as negatives too (not the official loss): only
# the distortion tells them from the positive; unlike batchneg, the query's own
# version at the other scale and the other pictures' keys are not added
for _seed in (0, 1):
    VARIANTS[f"mix depth10 siblingneg steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800), "learning_rate": 1.2, "seed": _seed, "model.depth": 10,
                   "negatives": "queue+siblings"}, steps=1800)
# ResNet-10, one scale: no half-size crop pairs, twice the pictures per step (the
# same 96 crop pairs); the half-scale part of the demo's features carries almost
# nothing on the validation photos (SRCC 0.03 / 0.06 alone for the recipe's seeds)
for _seed in (0, 1):
    VARIANTS[f"mix depth10 scale1 batch16 steps1800 lr1.2 seed{_seed}"] = dict(
        overrides={"data": _mix(1800, batch=16), "learning_rate": 1.2, "seed": _seed,
                   "model.depth": 10, "batch_size": 16, "views.n_scale": 1}, steps=1800)
# the bundled pictures 4 times as often: 44 of every 144 pictures
for _steps, _lr, _seed in ((600, 1.2, 0), (600, 1.2, 1), (900, 1.2, 0), (900, 1.2, 1),
                           (600, 2.4, 0), (600, 2.4, 1)):
    VARIANTS[f"mix4 steps{_steps} lr{_lr} seed{_seed}"] = dict(
        overrides={"data": _mix(_steps, weight=4), "learning_rate": _lr, "seed": _seed},
        steps=_steps)



def recipe(name: str) -> dict:
    spec = dict(BASE, **VARIANTS[name])
    spec["overrides"] = dict(BASE["overrides"], **VARIANTS[name].get("overrides", {}))
    return spec


WALLPAPERS = Path("/usr/share/wallpapers")
# the size the validation photos are measured at: None = the demo's
# (``photos.IMAGE_HW``); ``--eval-size HxW`` measures the trained variants again
EVAL_HW: tuple[int, int] | None = None


def _hw_tag() -> str:
    """'' at the demo's size, else '_HxW' (for file and folder names)."""
    return "" if EVAL_HW is None else f"_{EVAL_HW[0]}x{EVAL_HW[1]}"


def result_name() -> str:
    return f"result{_hw_tag()}.json"


def validation_photos(out: Path, root: Path) -> list[str]:
    """The validation photos, copied to OUT/validation_photos as NAME.EXT: each
    wallpaper's smallest landscape image of at least 1280 pixels across (large
    enough that its own JPEG coding vanishes in the demo's 256 x 192 crop)."""
    import shutil

    from reiqa_jax.demo import photos

    target = out / "validation_photos"
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for name in photos.VALIDATION:
        folder = root / name / "contents" / "images"
        if not folder.is_dir():
            raise SystemExit(f"demo_sweep: no wallpaper {name} under {root}: install Debian's "
                             f"plasma-workspace-wallpapers (or `apt-get download` it and "
                             f"`dpkg-deb -x` it) and pass --wallpapers ROOT/usr/share/wallpapers")
        sizes = []
        for f in folder.iterdir():
            w, h = (int(v) for v in f.stem.split("x"))
            if w >= max(h, 1280):
                sizes.append((w, f))
        source = min(sizes)[1]
        copy = target / f"{name}{source.suffix}"
        if not copy.exists():
            shutil.copyfile(source, copy)
        files.append(str(copy))
    return files


def _repeat_csv(folder: Path, names, repeat: int) -> Path:
    """FOLDER/repeat<K>.csv listing NAME.png for each of ``names``, ``repeat`` times over."""
    csv = folder / f"repeat{repeat}.csv"
    csv.write_text("Image_path\n" + "".join(f"{n}.png\n" for n in names) * repeat)
    return csv


def pictures_list(out: Path, repeat: int) -> str:
    """A CSV naming each of PICTURES ``repeat`` times (written to OUT/pictures, the
    shorter side brought down to 384 so a 192 x 256 training window sees a good
    part of the picture, as it does of the test photos)."""
    from PIL import Image

    from reiqa_jax.demo.photos import load_photo

    folder = out / "pictures"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PICTURES:
        if not (folder / f"{name}.png").exists():
            image = Image.fromarray(load_photo(name))
            scale = 384 / min(image.size)
            if scale < 1:
                image = image.resize((round(image.size[0] * scale),
                                      round(image.size[1] * scale)), Image.BICUBIC)
            image.save(folder / f"{name}.png")
    csv = _repeat_csv(folder, PICTURES, repeat)
    return str(csv)


def leaves_list(out: Path, params: dict, data: str) -> str:
    """``data`` with its ``synthetic:100:256x192*K`` part replaced by a CSV of the
    same 100 dead-leaves pictures drawn with other ``params``
    (``DeadLeavesParams`` fields), written once to OUT/leaves_<params>/."""
    import re

    from PIL import Image

    from reiqa_jax.data.sources import SYNTHETIC_SEED
    from reiqa_jax.data.synthetic import DeadLeavesParams, dead_leaves, rng_for

    match = re.match(r"synthetic:(\d+):(\d+)x(\d+)\*(\d+)\+", data)
    if match is None:
        raise SystemExit(f"demo_sweep: leaves= needs a synthetic:N:WxH*K+... data string: {data}")
    n, w, h, repeat = (int(v) for v in match.groups())
    tag = re.sub(r"[^0-9A-Za-z.]+", "-", "_".join(f"{k}{v}" for k, v in sorted(params.items())))
    folder = out / f"leaves_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if not (folder / f"{i}.png").exists():
            picture = dead_leaves(rng_for(SYNTHETIC_SEED, i), (h, w), DeadLeavesParams(**params))
            Image.fromarray(picture).save(folder / f"{i}.png")
    csv = _repeat_csv(folder, range(n), repeat)
    return str(csv) + data[match.end() - 1:]


def validation_set(out: Path):
    from reiqa_jax.demo import kinds
    from reiqa_jax.demo.iqa_set import make_labelled_set

    return make_labelled_set(out / f"validation_set{_hw_tag()}",
                             validation_photos(out, WALLPAPERS), kinds.KINDS, hw=EVAL_HW)


def references(out: Path, arch: dict) -> dict:
    """Random inits (3 seeds) and classical statistics on the validation set (cached)."""
    from reiqa_jax.demo import classical
    from reiqa_jax.demo.measure import encoder_features, measure, one_kind_alone
    from reiqa_jax.demo.training import random_encoder

    def summary(x):
        return dict(measure(x, labelled).summary(), one_kind_alone=one_kind_alone(x, labelled))

    tag = f"r{arch['depth']}_w{arch['width']}_f{arch['feat_dim']}"
    path = out / f"references_{tag}{_hw_tag()}.json"
    if path.exists():
        return json.loads(path.read_text())
    labelled = validation_set(out)
    ref = {"random": {}, "classical": {}}
    for seed in RANDOM_SEEDS:
        ckpt = random_encoder(out / "random" / f"{tag}_seed{seed}", arch, seed)
        ref["random"][str(seed)] = summary(encoder_features(labelled.paths, ckpt))
    for name, x in classical.statistics(labelled.paths).items():
        ref["classical"][name] = summary(x)
    path.write_text(json.dumps(ref, indent=1) + "\n")
    return ref


def _tail_metrics(metrics_path: Path, n: int = 5) -> dict:
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    last = rows[-n:]
    return {"loss": float(np.mean([r["loss"] for r in last])),
            "acc": float(np.mean([r["acc"] for r in last])),
            "pairs_per_sec": float(np.median([r["pairs_per_sec"] for r in rows[1:]] or [0]))}


def run_variant(name: str, out: Path) -> None:
    """Trains and measures one variant (the subprocess's job)."""
    from reiqa_jax.compile_cache import enable_compile_cache
    from reiqa_jax.demo.measure import encoder_features, measure, one_kind_alone
    from reiqa_jax.demo.training import curve_encoders, demo_config, prepare, set_recipe, train

    enable_compile_cache()
    spec = recipe(name)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    config = demo_config(spec["overrides"])
    if spec.get("leaves"):
        config.data = leaves_list(out, spec["leaves"], config.data)
    if spec["pictures"]:
        listed = pictures_list(out, spec["pictures"])
        config.data = f"{config.data}+{listed}" if config.data else listed
    set_recipe(config, steps=spec["steps"], warmup_fraction=spec["warmup"],
               queue_steps=spec["queue_steps"])
    timing = folder / "train_seconds.json"
    if not timing.exists():  # a finished run is measured again, not retrained
        started = time.time()
        prepare(config, folder / "train")
        train(config, folder / "train")
        timing.write_text(json.dumps(time.time() - started))
    train_seconds = json.loads(timing.read_text())
    labelled = validation_set(out)
    curve = {}
    encoders = curve_encoders(config, folder / "train", folder / "curve")
    for step, ckpt in encoders.items():
        x = encoder_features(labelled.paths, ckpt)
        curve[str(step)] = measure(x, labelled).summary()
        if step == max(encoders):
            curve[str(step)]["one_kind_alone"] = one_kind_alone(x, labelled)
    # the momentum (EMA) encoder of the final step, beside the online one the demo exports
    from reiqa_jax.checkpoint import load_training_state, save_model

    ema_dir = folder / "curve" / "ema_final"
    if not (ema_dir / "reiqa.json").exists():
        save_model(ema_dir, load_training_state(folder / "train" / "model")["ema_model"],
                   meta={"source": "momentum encoder of the final step"}, overwrite=True)
    ema = measure(encoder_features(labelled.paths, ema_dir), labelled).summary()
    result = {"name": name, "recipe": spec, "config": json.loads(config.to_json()), "ema": ema,
              "train_seconds": round(train_seconds, 1),
              "metrics": _tail_metrics(folder / "train" / "metrics.jsonl"), "curve": curve}
    (folder / result_name()).write_text(json.dumps(result, indent=1) + "\n")


def _describe(recipe: dict) -> str:
    """The recipe's changes from BASE, briefly (the bundled pictures by count)."""
    import re

    parts = []
    for key, value in recipe["overrides"].items():
        if value == BASE["overrides"].get(key):
            continue
        if key == "data" and not value:
            value = "no dead leaves"
        elif key == "data":
            value = re.sub(r"skimage:[^*+]*", f"{len(PICTURES)} bundled pictures", value)
            value = value.replace(":256x192", "").replace("synthetic:", "dead leaves ")
            value = value.replace("*", " x").replace("+", " + ")
        parts.append(f"{key}={value}" if key != "data" else str(value))
    if recipe["steps"] != BASE["steps"]:
        parts.append(f"{recipe['steps']} steps")
    if recipe["queue_steps"] != BASE["queue_steps"]:
        parts.append(f"queue {recipe['queue_steps']} steps of keys")
    if recipe.get("pictures"):
        parts.append(f"+ {len(PICTURES)} bundled pictures x{recipe['pictures']}")
    if recipe.get("leaves"):
        parts.append("dead leaves drawn with " + ", ".join(
            f"{k}={v}" for k, v in sorted(recipe["leaves"].items())))
    return ", ".join(parts) or "-"


def table(out: Path) -> str:
    """The sweep's table (markdown) from the finished variants."""
    rows, refs = [], {}
    for name in VARIANTS:
        path = out / name / result_name()
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        m = r["config"]["model"]
        arch = {"depth": m["depth"], "width": m["width"], "feat_dim": m["feat_dim"]}
        key = json.dumps(arch, sort_keys=True)
        if key not in refs:
            refs[key] = references(out, arch)
        ref = refs[key]
        rnd = [v["srcc"] for v in ref["random"].values()]
        steps = sorted(r["curve"], key=int)
        final = r["curve"][steps[-1]]
        combined = ref["classical"]["combined"]
        ahead = sum(a > b for a, b in zip(final["per_split_srcc"], combined["per_split_srcc"]))
        ema = f"{r['ema']['srcc']:.3f}" if "ema" in r else "-"
        above = _worst_above(final) if "pristine_above_strongest" in final else "-"
        every = (f"{final['pristine_above_every_kind']:.2f}"
                 if "pristine_above_every_kind" in final else "-")
        alone = _alone(final.get("one_kind_alone"))
        rows.append(
            f"| {name} | {_describe(r['recipe'])} | "
            + " / ".join(f"{r['curve'][s]['srcc']:.3f}" for s in steps)
            + f" | {ema} | {final['series_srcc_mean']:.3f} | {above} | {every} | {alone} | "
            f"{final['srcc'] - np.mean(rnd):+.3f} | "
            f"{ahead}/{len(final['per_split_srcc'])} | {r['metrics']['loss']:.2f} | "
            f"{r['metrics']['acc']:.1f} | {r['train_seconds'] / 60:.1f} |")
    ref = next(iter(refs.values())) if refs else None
    lines = [
        f"Base recipe: ResNet-18 x 0.25, patch 64, 5 distorted versions, batch 8, "
        f"{BASE['steps']} steps, LARS lr {BASE['overrides']['learning_rate']} with a per-step "
        f"cosine, warmup {BASE['warmup']:.0%} of the steps, queue {BASE['queue_steps']} steps of "
        f"keys, EMA 0.99, data {BASE['overrides']['data']} (dead leaves); each variant changes "
        f"what its row says and trains once (seed 0 unless named). Validation: "
        f"{len(VALIDATION_NAMES())} photos x (10 kinds x 5 levels + pristine) at "
        f"{'x'.join(map(str, EVAL_HW or IMAGE_HW()))} pixels, 20 splits by photo.",
    ]
    if ref is not None:
        rnd = [v["srcc"] for v in ref["random"].values()]
        lines.append(
            f"References on the same photos: random init (seeds "
            f"{', '.join(ref['random'])}) SRCC {np.mean(rnd):.3f} [{min(rnd):.3f}, "
            f"{max(rnd):.3f}]; classical statistics combined {combined_of(ref):.3f} "
            f"(each: " + ", ".join(f"{k.replace('_', ' ')} {v['srcc']:.3f}" for k, v in
                                   ref["classical"].items() if k != "combined") + ").")
        if "pristine_above_strongest" in ref["classical"]["combined"]:
            worst = [_worst_above(v) for v in ref["random"].values()]
            lines[-1] += (" Pristine above level 4, worst kind: random init "
                          + ", ".join(worst) + "; classical statistics combined "
                          + _worst_above(ref["classical"]["combined"]) + ".")
        if "pristine_above_every_kind" in ref["classical"]["combined"]:
            every = [f"{v['pristine_above_every_kind']:.2f}" for v in ref["random"].values()]
            lines[-1] += (" Test photos with pristine above level 4 of every kind at once: "
                          "random init " + ", ".join(every) + "; classical statistics combined "
                          f"{ref['classical']['combined']['pristine_above_every_kind']:.2f}.")
        if "one_kind_alone" in ref["classical"]["combined"]:
            lines[-1] += (f" One kind alone ({' / '.join(ALONE_KINDS)}): random init "
                          + "; ".join(_alone(v["one_kind_alone"]) for v in ref["random"].values())
                          + "; classical statistics combined "
                          + _alone(ref["classical"]["combined"]["one_kind_alone"]) + ".")
    lines += ["",
              "| variant | changed from the base | val SRCC at 0 / 25 / 50 / 100 % | EMA encoder "
              "at 100 % | within one series at 100 % | pristine above level 4 at 100 %: "
              "worst kind | test photos with pristine above level 4 of every kind at 100 % | "
              f"one kind alone at 100 %: {' / '.join(ALONE_KINDS)} | "
              "trained - random mean | splits ahead "
              "of classical | final loss | final top-1 % | train min |",
              "|---|---|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    return "\n".join(lines + rows)


# the kinds the alone column shows: the three that fail the example check, and a blur
ALONE_KINDS = ("jpeg", "pixelate", "color_block", "gaussian_blur")


def _alone(alone: dict | None) -> str:
    """'0.30 / 0.19 / 0.43 / 0.55': ``one_kind_alone`` of ALONE_KINDS, or '-'."""
    return " / ".join(f"{alone[k]:.2f}" for k in ALONE_KINDS) if alone else "-"


def _worst_above(summary: dict) -> str:
    """'0.40 (jpeg)': the lowest share of test series whose pristine picture is
    predicted above level 4, and its kind."""
    above = summary["pristine_above_strongest"]
    return f"{min(above.values()):.2f} ({min(above, key=above.get)})"


def combined_of(ref: dict) -> float:
    return ref["classical"]["combined"]["srcc"]


def IMAGE_HW():
    from reiqa_jax.demo import photos

    return photos.IMAGE_HW


def VALIDATION_NAMES():
    from reiqa_jax.demo import photos

    return photos.VALIDATION


def main() -> int:
    global WALLPAPERS, EVAL_HW
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo_sweep")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--run", default="", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per variant")
    parser.add_argument("--record", action="store_true", help="write the table to RESULTS.md")
    parser.add_argument("--block", default="demo_sweep",
                        help="the RESULTS.md block to write (one per sweep folder)")
    parser.add_argument("--about", default="",
                        help="a sentence for the RESULTS.md block (e.g. which code trained it)")
    parser.add_argument("--wallpapers", type=Path, default=WALLPAPERS,
                        help="folder of the validation wallpapers (default: %(default)s)")
    parser.add_argument("--eval-size", default="", metavar="HxW",
                        help="measure the validation photos at H x W pixels instead of the "
                             "demo's 192x256 (trained variants are measured again, not retrained;"
                             " results go to OUT/NAME/result_HxW.json)")
    args = parser.parse_args()
    WALLPAPERS = args.wallpapers
    if args.eval_size:
        try:
            h, w = (int(v) for v in args.eval_size.lower().split("x"))
        except ValueError:
            parser.error(f"--eval-size wants HxW, e.g. 288x384, not {args.eval_size!r}")
        EVAL_HW = (h, w)
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    if args.run:
        run_variant(args.run, out)
        return 0
    names = [n for n in (args.only.split(",") if args.only else VARIANTS) if n]
    for name in names:
        if name not in VARIANTS:
            print(f"demo_sweep: no variant {name!r}", file=sys.stderr)
            return 2
        if (out / name / result_name()).exists():
            continue
        print(f"demo_sweep: {name} ...", file=sys.stderr, flush=True)
        started = time.time()
        try:
            subprocess.run([sys.executable, __file__, "--out", str(out), "--run", name,
                            "--wallpapers", str(WALLPAPERS)]
                           + (["--eval-size", args.eval_size] if args.eval_size else []),
                           check=True, timeout=args.timeout, cwd=ROOT)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            print(f"demo_sweep: {name} failed: {exc}", file=sys.stderr, flush=True)
            continue
        print(f"demo_sweep: {name} done in {time.time() - started:.0f} s", file=sys.stderr,
              flush=True)
    text = table(out)
    print(text)
    if args.record:
        from common import cpu_name, write_block

        done = [(out / n / result_name()).stat().st_mtime for n in VARIANTS
                if (out / n / result_name()).exists()]

        def when(t):
            return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

        write_block(f"<!-- {args.block}:begin -->", f"<!-- {args.block}:end -->",
                    f"### Demo recipe sweep (`benchmarks/demo_sweep.py`, validation photos)\n\n"
                    f"{cpu_name()}, 2 cores; variants finished {when(min(done))} to "
                    f"{when(max(done))}; machine shared with other jobs (train minutes are "
                    f"inflated by their load).{' ' + args.about if args.about else ''}\n\n"
                    f"{text}\n", before="<!-- demo_seeds:begin -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
