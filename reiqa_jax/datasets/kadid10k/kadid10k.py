"""KADID-10k: 81 pristine images x 25 distortion types x 5 levels = 10,125 images.

Lin, Hosu, Saupe, "KADID-10k: A large-scale artificially distorted IQA
database", QoMEX 2019.
"""

from __future__ import annotations

import re
from pathlib import Path

from reiqa_jax.datasets import core

# The 25 distortion types in KADID-10k's numbering (file names I<ref>_<type>_<level>.png).
DISTORTIONS = (
    "gaussian_blur", "lens_blur", "motion_blur", "color_diffusion", "color_shift",
    "color_quantization", "color_saturation_hsv", "color_saturation_lab", "jpeg2000", "jpeg",
    "white_noise", "white_noise_color_component", "impulse_noise", "multiplicative_noise",
    "denoise", "brighten", "darken", "mean_shift", "jitter", "non_eccentricity_patch",
    "pixelate", "quantization", "color_block", "high_sharpen", "contrast_change",
)
_NAME = re.compile(r"^(i\d+)_(\d+)_(\d+)\.", re.IGNORECASE)


class Kadid10k(core.IQABuilder):
    """KADID-10k, synthetic distortions; score from dmos.csv, 1-5, higher is better."""

    HIGHER_IS_BETTER = True  # the column is called dmos but 5 = no visible difference
    SYNTHETIC = True
    DESCRIPTION = ("KADID-10k: 81 pristine images, 25 distortion types at 5 levels (10,125 "
                   "images, 512x384), rated by crowd workers in degradation-category tests. "
                   "The 'dmos' column of dmos.csv is on 1-5 with 5 = imperceptible, so "
                   "higher is better.")
    HOMEPAGE = "https://database.mmsp-kn.de/kadid-10k-database.html"
    CITATION = """@inproceedings{lin2019kadid,
  title={KADID-10k: A Large-scale Artificially Distorted IQA Database},
  author={Lin, Hanhe and Hosu, Vlad and Saupe, Dietmar},
  booktitle={QoMEX}, pages={1--3}, year={2019}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
From https://database.mmsp-kn.de/kadid-10k-database.html download kadid10k.zip
and unzip it into manual_dir, which then holds
  manual_dir/kadid10k/dmos.csv      (columns dist_img, ref_img, dmos, var)
  manual_dir/kadid10k/images/       (I01.png ... I81.png and I01_01_01.png ...)
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        labels = core.find_file(manual_dir, "dmos.csv", what="KADID-10k scores")
        rows = core.read_csv_rows(labels)
        dist_col = core.column(rows, ("dist_img",), labels)
        score_col = core.column(rows, ("dmos",), labels)
        tree = core.CaseInsensitiveTree(labels.parent / "images")
        paths = core.resolve_all(tree, [r[dist_col] for r in rows], manual_dir, what="KADID-10k")
        out = []
        for path, row in zip(paths, rows):
            match = _NAME.match(row[dist_col])
            if match is None:
                raise core.DatasetError(f"{labels}: unexpected image name {row[dist_col]}")
            kind = int(match.group(2))
            out.append(core.Record(
                path=path, score=float(row[score_col]), content=match.group(1).upper(),
                distortion=DISTORTIONS[kind - 1] if 1 <= kind <= len(DISTORTIONS) else str(kind),
                level=int(match.group(3))))
        return out
