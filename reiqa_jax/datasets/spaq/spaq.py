"""SPAQ: 11,125 smartphone photos with MOS, image attributes, EXIF and scene labels.

Fang, Zhu, Zeng, Ma, Wang, "Perceptual quality assessment of smartphone
photography", CVPR 2020.
"""

from __future__ import annotations

from pathlib import Path

from reiqa_jax.datasets import core


class Spaq(core.IQABuilder):
    """SPAQ, authentic distortions, MOS on 0-100 (higher is better)."""

    HIGHER_IS_BETTER = True
    DESCRIPTION = ("SPAQ: 11,125 photos taken with 66 smartphones, full resolution (about "
                   "4000x3000), rated in the lab; MOS on 0-100. The images are large: the "
                   "'labels' config avoids a second copy, and reiqa evaluate scales them "
                   "to a shorter side of 512 px by default, as the SPAQ authors did.")
    HOMEPAGE = "https://github.com/h4nwei/SPAQ"
    CITATION = """@inproceedings{fang2020perceptual,
  title={Perceptual Quality Assessment of Smartphone Photography},
  author={Fang, Yuming and Zhu, Hanwei and Zeng, Yan and Ma, Kede and Wang, Zhou},
  booktitle={CVPR}, pages={3677--3686}, year={2020}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the SPAQ database through the links at https://github.com/h4nwei/SPAQ
(Baidu Yun or MEGA): the images (TestImage) and the annotations. Put them in
manual_dir so that it holds
  manual_dir/TestImage/             (00001.jpg ... 11125.jpg)
  manual_dir/Annotations/MOS and Image attribute scores.xlsx
                                    (columns Image name, MOS, Brightness, ...)
(possibly one folder deeper, e.g. manual_dir/SPAQ/...).
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        labels = core.find_file(manual_dir, "MOS and Image attribute scores.xlsx",
                                what="SPAQ scores")
        rows = core.read_xlsx_rows(labels, required=("image name", "mos"))
        images = core.find_file(manual_dir, "TestImage", what="SPAQ images", directory=True)
        rows = [r for r in rows if str(r["image name"]).strip()]
        paths = core.resolve_all(core.CaseInsensitiveTree(images),
                                 [str(r["image name"]).strip() for r in rows], manual_dir,
                                 what="SPAQ")
        return [core.Record(path=p, score=float(r["mos"])) for p, r in zip(paths, rows)]
