"""``reiqa demo``: a quality encoder trained here, measuring quality, with no download.

1. **Train** ``configs/smoke.py`` (a small ResNet, the official Re-IQA
   recipe scaled down) on photos bundled with scikit-image, except the
   held-out ones.
2. **A small synthetic IQA set**: each *held-out* photo, pristine and
   distorted with the augment package at its 5 levels by several distortion
   types. Score = 5 for the pristine picture, 4 - level for a distorted one
   (higher is better; the level is the only ground truth a synthetic set has).
3. **Features** of every image (``reiqa extract``'s computation: full + half
   scale, eval mode) from the trained quality encoder and from the same
   architecture randomly initialised.
4. **The regression protocol** (``reiqa regress``'s: Ridge/ElasticNet, 10
   random splits, disjoint by photo) on each feature set, and on simple
   no-reference statistics computed for the same images (mean gradient
   magnitude, variance of the Laplacian, RMS contrast).
5. **Outputs** in the workdir: ``demo_report.json`` (``srcc_trained``,
   ``srcc_random``, the baselines, PLCCs, the mean SRCC within one
   distortion type of one photo, what was run), ``demo.png`` (SRCC
   per feature set; predicted vs true score for the trained encoder), and a
   model folder made with the trained encoder (``model/``) with which ``reiqa
   score`` scores example images into ``scored_examples.csv``.

The numbers are whatever this run measures; nothing is tuned to look good.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

# Held out from training; everything else in reiqa_jax.data.sample_photos trains.
HELD_OUT = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
KINDS = ("gaussian_blur", "jpeg", "white_noise", "contrast_change", "pixelate")
IMAGE_HW = (192, 256)
DEFAULT_TRAIN_STEPS = 120


def _log(message: str) -> None:
    print(f"reiqa demo: {message}", file=sys.stderr, flush=True)


def _centre_crop(image: np.ndarray, hw) -> np.ndarray:
    """Resize so the picture covers ``hw`` (PIL bicubic), then centre-crop."""
    from PIL import Image

    h, w = image.shape[:2]
    s = max(hw[0] / h, hw[1] / w)
    size = (max(hw[1], round(w * s)), max(hw[0], round(h * s)))
    image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
    top, left = (image.shape[0] - hw[0]) // 2, (image.shape[1] - hw[1]) // 2
    return np.ascontiguousarray(image[top:top + hw[0], left:left + hw[1]])


def make_synthetic_set(folder: Path, photos=HELD_OUT, kinds=KINDS, seed: int = 0) -> list[dict]:
    """Writes the synthetic IQA images; returns rows (path, score, group, kind, level)."""
    import jax
    from PIL import Image

    from reiqa_jax.augment import distort
    from reiqa_jax.data.sample_photos import load_sample_photo
    from reiqa_jax.normalize import to_unit_float

    folder.mkdir(parents=True, exist_ok=True)
    apply = jax.jit(distort, static_argnums=(2, 3))
    rows = []
    for p, name in enumerate(photos):
        picture = _centre_crop(load_sample_photo(name), IMAGE_HW)
        path = folder / f"{name}_pristine.png"
        Image.fromarray(picture).save(path)
        rows.append(dict(path=str(path), score=5.0, group=name, kind="pristine", level=-1))
        x = to_unit_float(picture)
        for k, kind in enumerate(kinds):
            for level in range(5):
                key = jax.random.key(seed * 100_003 + p * 1009 + k * 17 + level)
                out = np.asarray(apply(key, x, kind, level))
                image = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
                path = folder / f"{name}_{kind}_{level}.png"
                Image.fromarray(image).save(path)
                rows.append(dict(path=str(path), score=4.0 - level, group=name, kind=kind,
                                 level=level))
    return rows


def baseline_features(paths) -> dict[str, np.ndarray]:
    """Simple no-reference statistics of each image, (N, 1) each."""
    from PIL import Image
    from skimage import filters

    out = {"mean_gradient_magnitude": [], "laplacian_variance": [], "rms_contrast": []}
    for path in paths:
        grey = np.asarray(Image.open(path).convert("L"), np.float64) / 255.0
        out["mean_gradient_magnitude"].append(filters.sobel(grey).mean())
        out["laplacian_variance"].append(filters.laplace(grey).var())
        out["rms_contrast"].append(grey.std())
    return {k: np.asarray(v, np.float64)[:, None] for k, v in out.items()}


def train_encoder(workdir: Path, *, train_steps: int, overrides: dict | None = None) -> Path:
    """Trains configs/smoke.py on the bundled photos minus HELD_OUT; returns the model dir."""
    from reiqa_jax.config_file import apply_overrides, load_config
    from reiqa_jax.data.sample_photos import ALL, write_sample_photos
    from reiqa_jax.train import train_and_evaluate

    photos = workdir / "train_photos"
    write_sample_photos(photos, [n for n in ALL if n not in HELD_OUT])
    config = load_config("smoke")
    config.data = str(photos)
    config.num_steps = train_steps
    config.checkpoint_every_steps = max(train_steps, 1)
    config.log_every_steps = max(1, train_steps // 10)
    apply_overrides(config, [(k, str(v)) for k, v in (overrides or {}).items()])
    status = train_and_evaluate(config, workdir / "train")
    if status != 0:
        raise RuntimeError(f"training stopped with status {status}")
    return workdir / "train" / "model"


def within_type_srcc(result, kinds, groups) -> float:
    """Mean SRCC of the protocol's test predictions within each (photo,
    distortion type) series (its pristine picture and 5 levels, where the
    level order is certain), over all splits: does a feature set order the
    severity of one kind of damage, whatever the scale across kinds."""
    from reiqa_jax import metrics

    values = []
    for split in result.splits:
        prediction = dict(zip(split.test.tolist(), split.test_prediction))
        for photo in np.unique(groups[split.test]):
            pristine = [i for i in split.test if groups[i] == photo and kinds[i] == "pristine"]
            for kind in np.unique(kinds[split.test]):
                if kind == "pristine":
                    continue
                idx = pristine + [i for i in split.test if groups[i] == photo and kinds[i] == kind]
                values.append(metrics.srcc(np.array([prediction[i] for i in idx]),
                                           result.scores[idx]))
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _random_encoder(directory: Path, arch: dict, seed: int) -> Path:
    from flax import nnx

    from reiqa_jax.checkpoint import save_model
    from reiqa_jax.models import ReIQAModel

    if not (directory / "reiqa.json").exists():
        model = ReIQAModel(arch["depth"], arch["width"], arch["feat_dim"], rngs=nnx.Rngs(seed))
        save_model(directory, model, meta={"source": f"random init (seed {seed})"},
                   overwrite=True)
    return directory


def _plot(results: dict, trained_split, scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(results)
    values = [results[n] for n in names]
    ax1.barh(names, values, color=["C0" if n == "trained encoder" else "C7" for n in names])
    ax1.set_xlim(min(0.0, min(values)) - 0.25, 1.0)  # room for a negative bar's label
    ax1.set_xlabel("median test SRCC (10 splits, disjoint by photo)")
    for i, v in enumerate(values):
        ax1.text(v + 0.01 if v >= 0 else v - 0.01, i, f"{v:.3f}", va="center",
                 ha="left" if v >= 0 else "right")
    ax1.invert_yaxis()
    test, prediction = trained_split
    ax2.scatter(scores[test], prediction, s=14, alpha=0.7)
    ax2.set_xlabel("true score (5 = pristine, 4 - level)")
    ax2.set_ylabel("predicted score")
    ax2.set_title("trained encoder, test photos of the median split")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(workdir, *, train_steps: int = DEFAULT_TRAIN_STEPS, photos=HELD_OUT,
             kinds=KINDS, overrides: dict | None = None, n_splits: int = 10) -> dict:
    """Runs the whole demo (module docstring) in ``workdir``; returns the report dict.

    train_steps / overrides: the training run (``configs/smoke.py`` plus these
    ``--config`` values); photos / kinds / n_splits: the synthetic set and the
    protocol. Smaller values make a quicker (noisier) demo.
    """
    from reiqa_jax.checkpoint import read_header
    from reiqa_jax.extract import extract_features
    from reiqa_jax.quality_model import make_model_dir, score_images, write_scores_csv
    from reiqa_jax.regress import fit_final, run_protocol

    workdir = Path(workdir).absolute()
    started = time.time()
    _log(f"1/4 training configs/smoke.py for {train_steps} steps on the bundled photos "
         f"(held out: {', '.join(photos)})")
    trained = train_encoder(workdir, train_steps=train_steps, overrides=overrides)
    arch = read_header(trained)["arch"]
    random = _random_encoder(workdir / "random_encoder", arch, seed=1)

    _log(f"2/4 synthetic IQA set: {len(photos)} held-out photos x ({len(kinds)} distortions x "
         f"5 levels + pristine)")
    rows = make_synthetic_set(workdir / "iqa_images", photos, kinds)
    paths = [r["path"] for r in rows]
    scores = np.array([r["score"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    with open(workdir / "iqa_scores.csv", "w") as f:
        f.write("path,score,group\n" + "".join(f"{r['path']},{r['score']},{r['group']}\n"
                                               for r in rows))

    _log("3/4 features: trained encoder, random encoder, no-reference baselines")
    feature_sets = {}
    for name, ckpt in (("trained encoder", trained), ("random encoder", random)):
        feats = extract_features(paths, quality_ckpt=ckpt)
        if feats.failed:
            raise RuntimeError(f"could not read {feats.failed[0]}: {feats.errors[0]}")
        feature_sets[name] = feats.quality
    for name, values in baseline_features(paths).items():
        feature_sets[name.replace("_", " ")] = values

    _log(f"4/4 regression protocol ({n_splits} splits disjoint by photo) per feature set")
    results, protocol = {}, {}
    for name, x in feature_sets.items():
        protocol[name] = run_protocol(x, scores, groups, n_splits=n_splits, seed=0)
        results[name] = protocol[name].srcc_median
    best = protocol["trained encoder"]
    split = best.splits[best.median_split]
    _plot(results, (split.test, split.test_prediction), scores, workdir / "demo.png")

    regressor = fit_final(feature_sets["trained encoder"], scores, best,
                          feature_names=("quality",))
    model_dir = make_model_dir(workdir / "model", regressor, quality_ckpt=trained,
                               meta={"made_by": "reiqa demo"}, overwrite=True)
    examples = [r["path"] for r in rows if r["group"] == photos[0] and r["kind"] in
                ("pristine", "jpeg")]
    scored = score_images(examples, model_dir)
    write_scores_csv(scored, workdir / "scored_examples.csv")

    key = lambda name: name.replace(" ", "_")
    kinds_of = np.array([r["kind"] for r in rows])
    report = {
        "srcc_trained": results["trained encoder"],
        "srcc_random": results["random encoder"],
        "plcc_trained": protocol["trained encoder"].plcc_median,
        "plcc_random": protocol["random encoder"].plcc_median,
        "baselines": {key(n): v for n, v in results.items() if "encoder" not in n},
        "per_split_srcc": {key(n): [s.srcc for s in p.splits] for n, p in protocol.items()},
        "within_type_srcc": {key(n): within_type_srcc(p, kinds_of, groups)
                             for n, p in protocol.items()},
        "n_images": len(rows), "held_out_photos": list(photos), "distortions": list(kinds),
        "levels": 5, "n_splits": n_splits, "train_steps": train_steps,
        "encoder_arch": arch, "seconds": round(time.time() - started, 1),
    }
    (workdir / "demo_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nSRCC on {len(rows)} images of {len(photos)} held-out photos (median of "
          f"{n_splits} splits, disjoint by photo; and within one distortion type):")
    print(f"  {'features':28s} {'SRCC':>6s} {'within type':>12s}")
    for name, value in results.items():
        print(f"  {name:28s} {value:6.3f} {report['within_type_srcc'][key(name)]:12.3f}")
    print(f"\nreport: {workdir / 'demo_report.json'}   plot: {workdir / 'demo.png'}")
    print(f"scores of {photos[0]} (pristine, then JPEG levels 0-4) by `reiqa score --model "
          f"{model_dir}`: {workdir / 'scored_examples.csv'}")
    for row in scored:
        print(f"  {Path(row.path).name:32s} {row.score:7.3f}")
    return report
