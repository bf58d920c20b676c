"""TID2013: 25 reference images x 24 distortion types x 5 levels = 3,000 images.

Ponomarenko et al., "Image database TID2013: Peculiarities, results and
perspectives", Signal Processing: Image Communication 2015.
"""

from __future__ import annotations

import re
from pathlib import Path

from reiqa_jax.datasets import core

DISTORTIONS = (
    "additive_gaussian_noise", "additive_noise_color_components", "spatially_correlated_noise",
    "masked_noise", "high_frequency_noise", "impulse_noise", "quantization_noise",
    "gaussian_blur", "image_denoising", "jpeg", "jpeg2000", "jpeg_transmission_errors",
    "jpeg2000_transmission_errors", "non_eccentricity_pattern_noise",
    "local_block_wise_distortions", "mean_shift", "contrast_change", "color_saturation_change",
    "multiplicative_gaussian_noise", "comfort_noise", "lossy_compression_of_noisy_images",
    "color_quantization_with_dither", "chromatic_aberrations",
    "sparse_sampling_and_reconstruction",
)
_NAME = re.compile(r"^i(\d+)_(\d+)_(\d+)\.", re.IGNORECASE)


class Tid2013(core.IQABuilder):
    """TID2013, synthetic distortions, MOS on 0-9 (higher is better)."""

    HIGHER_IS_BETTER = True
    SYNTHETIC = True
    DESCRIPTION = ("TID2013: 25 reference images (512x384, from the Kodak set), 24 "
                   "distortion types at 5 levels, 3,000 distorted images; MOS on 0-9 from "
                   "pairwise comparisons.")
    HOMEPAGE = "https://www.ponomarenko.info/tid2013.htm"
    CITATION = """@article{ponomarenko2015image,
  title={Image database TID2013: Peculiarities, results and perspectives},
  author={Ponomarenko, Nikolay and Jin, Lina and Ieremeiev, Oleg and Lukin, Vladimir and Egiazarian, Karen and Astola, Jaakko and Vozel, Benoit and Chehdi, Kacem and Carli, Marco and Battisti, Federica and Kuo, C.-C. Jay},
  journal={Signal Processing: Image Communication}, volume={30}, pages={57--77}, year={2015}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download tid2013.rar from https://www.ponomarenko.info/tid2013.htm and extract
it (e.g. with "unrar x tid2013.rar" or "7z x tid2013.rar") into manual_dir, which
then holds
  manual_dir/distorted_images/      (i01_01_1.bmp ... 3,000 files)
  manual_dir/reference_images/      (i01.bmp ... 25 files)
  manual_dir/mos_with_names.txt     (lines "5.51429 i01_01_1.bmp")
(possibly one folder deeper). File names are matched regardless of case.
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        labels = core.find_file(manual_dir, "mos_with_names.txt", what="TID2013 scores")
        entries = []
        for number, line in enumerate(labels.read_text(errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                score, name = float(parts[0]), parts[1]
            except (ValueError, IndexError):
                raise core.DatasetError(f"{labels}: line {number} is not 'MOS name': {line}") from None
            match = _NAME.match(name)
            if match is None:
                raise core.DatasetError(f"{labels}: unexpected image name {name}")
            entries.append((name, score, match))
        images = labels.parent / "distorted_images"
        if not images.is_dir():
            images = core.find_file(manual_dir, "distorted_images", what="TID2013 images",
                                    directory=True)
        paths = core.resolve_all(core.CaseInsensitiveTree(images), [e[0] for e in entries],
                                 manual_dir, what="TID2013")
        out = []
        for path, (_, score, match) in zip(paths, entries):
            kind = int(match.group(2))
            out.append(core.Record(
                path=path, score=score, content=f"I{int(match.group(1)):02d}",
                distortion=DISTORTIONS[kind - 1] if 1 <= kind <= len(DISTORTIONS) else str(kind),
                level=int(match.group(3))))
        return out
