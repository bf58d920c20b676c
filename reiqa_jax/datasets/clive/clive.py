"""CLIVE, the LIVE In the Wild Image Quality Challenge Database: 1,162 mobile photos.

Ghadiyaram, Bovik, "Massive online crowdsourced study of subjective and
objective picture quality", IEEE TIP 2016.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reiqa_jax.datasets import core


class Clive(core.IQABuilder):
    """CLIVE (LIVE Challenge), authentic distortions, MOS on 0-100 (higher is better)."""

    HIGHER_IS_BETTER = True
    DESCRIPTION = ("CLIVE (LIVE In the Wild Image Quality Challenge Database): 1,162 photos "
                   "taken with mobile devices (500x500), rated by 8,100 crowd workers; "
                   "MOS on 0-100. The 7 training images shown to the raters "
                   "(Images/trainingImages) are left out, as usual.")
    HOMEPAGE = "https://live.ece.utexas.edu/research/ChallengeDB/index.html"
    CITATION = """@article{ghadiyaram2016massive,
  title={Massive Online Crowdsourced Study of Subjective and Objective Picture Quality},
  author={Ghadiyaram, Deepti and Bovik, Alan C.},
  journal={IEEE Transactions on Image Processing}, volume={25}, number={1}, pages={372--387}, year={2016}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request ChallengeDB_release.zip at
https://live.ece.utexas.edu/research/ChallengeDB/index.html and unzip it into
manual_dir, which then holds
  manual_dir/ChallengeDB_release/Images/                 (the .bmp/.JPG photos;
                                        Images/trainingImages/ holds 7 more)
  manual_dir/ChallengeDB_release/Data/AllImages_release.mat   (AllImages_release)
  manual_dir/ChallengeDB_release/Data/AllMOS_release.mat      (AllMOS_release)
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        names_mat = core.find_file(manual_dir, "AllImages_release.mat", what="CLIVE image list")
        mos_mat = names_mat.parent / "AllMOS_release.mat"
        if not mos_mat.exists():
            mos_mat = core.find_file(manual_dir, "AllMOS_release.mat", what="CLIVE scores")
        names = core.mat_strings(core.load_mat(names_mat, "AllImages_release")["AllImages_release"])
        mos = np.asarray(core.load_mat(mos_mat, "AllMOS_release")["AllMOS_release"],
                         np.float64).reshape(-1)
        if len(names) != mos.size:
            raise core.DatasetError(f"CLIVE: {len(names)} image names but {mos.size} scores")
        images = core.CaseInsensitiveTree(names_mat.parent.parent / "Images")
        kept, scores = [], []
        for name, score in zip(names, mos):
            if images.find(name) is None and images.find(f"trainingImages/{name}") is not None:
                continue  # one of the 7 images used to train the raters
            kept.append(name)
            scores.append(float(score))
        paths = core.resolve_all(images, kept, manual_dir, what="CLIVE")
        return [core.Record(path=p, score=s) for p, s in zip(paths, scores)]
