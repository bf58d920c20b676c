"""CSIQ: 30 reference images x 6 distortion types x 4-5 levels = 866 distorted images.

Larson, Chandler, "Most apparent distortion: full-reference image quality
assessment and the role of strategy", Journal of Electronic Imaging 2010.
"""

from __future__ import annotations

from pathlib import Path

from reiqa_jax.datasets import core

# dst_idx of csiq.DMOS.xlsx -> (folder under dst_imgs/, tag in the file name).
DISTORTIONS = {1: ("awgn", "AWGN"), 2: ("jpeg", "JPEG"), 3: ("jpeg2000", "jpeg2000"),
               4: ("fnoise", "fnoise"), 5: ("blur", "BLUR"), 6: ("contrast", "contrast")}


def _cell_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores image 1600 as a number
    return str(value).strip()


class Csiq(core.IQABuilder):
    """CSIQ, synthetic distortions, DMOS on 0-1 (lower is better)."""

    HIGHER_IS_BETTER = False
    SYNTHETIC = True
    DESCRIPTION = ("CSIQ: 30 reference images (512x512), 6 distortion types (white noise, "
                   "JPEG, JPEG2000, pink noise, Gaussian blur, contrast decrease) at 4-5 "
                   "levels, 866 distorted images; DMOS on 0-1.")
    HOMEPAGE = "https://s2.smu.edu/~eclarson/csiq.html"
    CITATION = """@article{larson2010most,
  title={Most apparent distortion: full-reference image quality assessment and the role of strategy},
  author={Larson, Eric C. and Chandler, Damon M.},
  journal={Journal of Electronic Imaging}, volume={19}, number={1}, pages={011006}, year={2010}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the CSIQ database from its page (Computational Perception and Image
Quality Lab, https://s2.smu.edu/~eclarson/csiq.html, formerly
vision.okstate.edu/csiq): the images and the scores file csiq.DMOS.xlsx. Put
them in manual_dir so that it holds
  manual_dir/src_imgs/                 (the 30 references, e.g. 1600.png)
  manual_dir/dst_imgs/awgn/ jpeg/ jpeg2000/ fnoise/ blur/ contrast/
                                       (e.g. dst_imgs/awgn/1600.AWGN.1.png)
  manual_dir/csiq.DMOS.xlsx            (sheet all_by_image: image, dst_idx,
                                        dst_type, dst_lev, dmos_std, dmos)
Folder and file names are matched regardless of case.
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        labels = core.find_file(manual_dir, "csiq.DMOS.xlsx", what="CSIQ scores")
        rows = core.read_xlsx_rows(labels, sheet="all_by_image",
                                   required=("image", "dst_idx", "dst_lev", "dmos"))
        dst = core.find_file(manual_dir, "dst_imgs", what="CSIQ images", directory=True)
        names, records = [], []
        for row in rows:
            if str(row.get("dmos", "")).strip() == "":
                continue
            try:
                index, level = int(row["dst_idx"]), int(row["dst_lev"])
                folder, tag = DISTORTIONS[index]
            except (KeyError, ValueError, TypeError):
                raise core.DatasetError(f"{labels}: unexpected row {row}") from None
            image = _cell_text(row["image"])
            names.append(f"{folder}/{image}.{tag}.{level}.png")
            records.append((image, folder, level, float(row["dmos"])))
        paths = core.resolve_all(core.CaseInsensitiveTree(dst), names, manual_dir, what="CSIQ")
        return [core.Record(path=p, score=score, content=image, distortion=folder, level=level)
                for p, (image, folder, level, score) in zip(paths, records)]
