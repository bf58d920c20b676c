"""KonIQ-10k: 10,073 in-the-wild photos (1024x768) with crowd-sourced MOS.

Hosu, Lin, Sziranyi, Saupe, "KonIQ-10k: An ecologically valid database for
deep learning of blind image quality assessment", IEEE TIP 2020.
"""

from __future__ import annotations

from pathlib import Path

from reiqa_jax.datasets import core


class Koniq10k(core.IQABuilder):
    """KonIQ-10k, authentic distortions, MOS on 1-5 (higher is better)."""

    HIGHER_IS_BETTER = True
    DESCRIPTION = ("KonIQ-10k: 10,073 in-the-wild photos from YFCC100m at 1024x768, each "
                   "rated by about 120 crowd workers; score = MOS on 1-5.")
    HOMEPAGE = "https://database.mmsp-kn.de/koniq-10k-database.html"
    CITATION = """@article{hosu2020koniq,
  title={KonIQ-10k: An ecologically valid database for deep learning of blind image quality assessment},
  author={Hosu, Vlad and Lin, Hanhe and Sziranyi, Tamas and Saupe, Dietmar},
  journal={IEEE Transactions on Image Processing}, volume={29}, pages={4041--4056}, year={2020}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
From https://database.mmsp-kn.de/koniq-10k-database.html download
  koniq10k_1024x768.zip                    (the images, 1024x768 JPEGs)
  koniq10k_scores_and_distributions.zip    (the scores)
and unzip both into manual_dir, which then holds
  manual_dir/1024x768/<image_name>.jpg                     (10,073 files)
  manual_dir/koniq10k_scores_and_distributions.csv
(columns image_name, c1..c5, c_total, MOS, SD, MOS_zscore; the 'MOS' column,
1-5, becomes the score). Optional: koniq10k_distributions_sets.csv from the
same page (its 'set' column, training/validation/test, becomes 'split').
The files may sit one folder deeper (e.g. manual_dir/koniq10k/...).
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        labels = core.find_file(manual_dir, "koniq10k_scores_and_distributions.csv",
                                what="KonIQ-10k scores")
        images = core.find_file(manual_dir, "1024x768", what="KonIQ-10k images", directory=True)
        rows = core.read_csv_rows(labels)
        name_col = core.column(rows, ("image_name",), labels)
        mos_col = core.column(rows, ("mos",), labels)
        splits = {}
        try:
            sets = core.find_file(manual_dir, "koniq10k_distributions_sets.csv", what="")
            set_rows = core.read_csv_rows(sets)
            set_col = core.column(set_rows, ("set",), sets)
            set_name = core.column(set_rows, ("image_name",), sets)
            splits = {r[set_name]: r[set_col] for r in set_rows}
        except core.DatasetError:
            pass
        names = [r[name_col] for r in rows]
        paths = core.resolve_all(core.CaseInsensitiveTree(images), names, manual_dir,
                                 what="KonIQ-10k")
        return [core.Record(path=p, score=float(r[mos_col]), split=splits.get(r[name_col], ""))
                for p, r in zip(paths, rows)]
