"""LIVE-FB (FLIVE): about 40,000 in-the-wild images from the PaQ-2-PiQ study.

Ying, Niu, Gupta, Mahajan, Ghadiyaram, Bovik, "From patches to pictures
(PaQ-2-PiQ): Mapping the perceptual space of picture quality", CVPR 2020.
"""

from __future__ import annotations

from pathlib import Path

from reiqa_jax.datasets import core


class LiveFb(core.IQABuilder):
    """LIVE-FB, authentic distortions, picture MOS (higher is better)."""

    HIGHER_IS_BETTER = True
    DESCRIPTION = ("LIVE-FB (FLIVE): 39,810 pictures from AVA, VOC, EMOTIC and a blur "
                   "dataset with picture-level MOS from labels_image.csv (the patch scores "
                   "of the study are not included).")
    HOMEPAGE = "https://github.com/niu-haoran/FLIVE_Database"
    CITATION = """@inproceedings{ying2020patches,
  title={From Patches to Pictures (PaQ-2-PiQ): Mapping the Perceptual Space of Picture Quality},
  author={Ying, Zhenqiang and Niu, Haoran and Gupta, Praful and Mahajan, Dhruv and Ghadiyaram, Deepti and Bovik, Alan},
  booktitle={CVPR}, pages={3575--3585}, year={2020}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Clone https://github.com/niu-haoran/FLIVE_Database and run its
database_prep.ipynb, which downloads the source collections (AVA, VOC2012,
EMOTIC, a blur dataset) into database/. Use the clone as manual_dir:
  manual_dir/labels_image.csv       (columns name, mos; name relative to database/)
  manual_dir/database/              (voc_emotic_ava/..., blur_dataset/..., EE371R/...)
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        labels = core.find_file(manual_dir, "labels_image.csv", what="LIVE-FB scores")
        rows = core.read_csv_rows(labels)
        name_col = core.column(rows, ("name", "name_image"), labels)
        mos_col = core.column(rows, ("mos", "mos_image"), labels)
        images = labels.parent / "database"
        if not images.is_dir():
            images = core.find_file(manual_dir, "database", what="LIVE-FB images", directory=True)
        paths = core.resolve_all(core.CaseInsensitiveTree(images), [r[name_col] for r in rows],
                                 manual_dir, what="LIVE-FB")
        return [core.Record(path=p, score=float(r[mos_col])) for p, r in zip(paths, rows)]
