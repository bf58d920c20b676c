"""LIVE Image Quality Assessment Database, release 2: 779 distorted images of 29 references.

Sheikh, Sabir, Bovik, "A statistical evaluation of recent full reference
image quality assessment algorithms", IEEE TIP 2006.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reiqa_jax.datasets import core

# dmos_realigned.mat lists the 982 images folder by folder in this order, img1.bmp ... imgN.bmp.
FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


class Live(core.IQABuilder):
    """LIVE release 2, synthetic distortions, realigned DMOS (lower is better)."""

    HIGHER_IS_BETTER = False
    SYNTHETIC = True
    DESCRIPTION = ("LIVE IQA release 2: 29 reference images, 5 distortion types (JPEG2000, "
                   "JPEG, white noise, Gaussian blur, fast-fading channel errors), 779 "
                   "distorted images. Score: the realigned DMOS (dmos_realigned.mat, "
                   "'dmos_new'); the 203 entries that are reference images (orgs == 1) are "
                   "left out. LIVE gives no discrete levels, so level is -1.")
    HOMEPAGE = "https://live.ece.utexas.edu/research/quality/subjective.htm"
    CITATION = """@article{sheikh2006statistical,
  title={A Statistical Evaluation of Recent Full Reference Image Quality Assessment Algorithms},
  author={Sheikh, Hamid R. and Sabir, Muhammad F. and Bovik, Alan C.},
  journal={IEEE Transactions on Image Processing}, volume={15}, number={11}, pages={3440--3451}, year={2006}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request "LIVE Image Quality Assessment Database Release 2" at
https://live.ece.utexas.edu/research/quality/subjective.htm and unzip
databaserelease2.zip into manual_dir, which then holds
  manual_dir/databaserelease2/jp2k/ jpeg/ wn/ gblur/ fastfading/   (img1.bmp ...)
  manual_dir/databaserelease2/refimgs/                            (29 references)
  manual_dir/databaserelease2/dmos_realigned.mat   (dmos_new, orgs: 1 x 982)
  manual_dir/databaserelease2/refnames_all.mat     (refnames_all: 1 x 982)
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        dmos_mat = core.find_file(manual_dir, "dmos_realigned.mat", what="LIVE scores")
        root = dmos_mat.parent
        refs_mat = root / "refnames_all.mat"
        if not refs_mat.exists():
            refs_mat = core.find_file(manual_dir, "refnames_all.mat", what="LIVE references")
        data = core.load_mat(dmos_mat, "dmos_new", "orgs")
        dmos = np.asarray(data["dmos_new"], np.float64).reshape(-1)
        orgs = np.asarray(data["orgs"]).reshape(-1)
        refs = core.mat_strings(core.load_mat(refs_mat, "refnames_all")["refnames_all"])
        listed = [(folder, k) for folder, count in FOLDERS for k in range(1, count + 1)]
        if not dmos.size == orgs.size == len(refs) == len(listed):
            raise core.DatasetError(
                f"LIVE: expected {len(listed)} entries in dmos_new, orgs and refnames_all, "
                f"got {dmos.size}, {orgs.size}, {len(refs)}")
        keep = [i for i in range(len(listed)) if orgs[i] == 0]
        tree = core.CaseInsensitiveTree(root)
        paths = core.resolve_all(tree, [f"{listed[i][0]}/img{listed[i][1]}.bmp" for i in keep],
                                 manual_dir, what="LIVE")
        return [core.Record(path=p, score=float(dmos[i]), content=Path(refs[i]).stem,
                            distortion=listed[i][0]) for p, i in zip(paths, keep)]
