"""Any IQA collection described by a CSV file: path,score[,group]."""

from __future__ import annotations

from pathlib import Path

from reiqa_jax.datasets import core


class IqaCsv(core.IQABuilder):
    """A generic collection: manual_dir/scores.csv with path,score[,group]."""

    HIGHER_IS_BETTER = True
    BUILDER_CONFIGS = list(core.CONFIGS) + [
        core.IQAConfig(name="images_dmos", with_images=True, higher_is_better=False,
                       description="as 'images', for scores where lower is better"),
        core.IQAConfig(name="labels_dmos", with_images=False, higher_is_better=False,
                       description="as 'labels', for scores where lower is better"),
    ]
    DESCRIPTION = ("A collection of your own: scores.csv with the columns path,score[,group] "
                   "(header optional; paths relative to the CSV's folder). group, e.g. the "
                   "reference image of a distorted copy, becomes 'content'. Configs "
                   "'images'/'labels' take scores where higher is better, "
                   "'images_dmos'/'labels_dmos' scores where lower is better. Use one "
                   "data_dir per collection: builds are cached by name and config.")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put a file scores.csv in manual_dir with the columns path,score[,group] (a
header row is optional) and the images it names, paths relative to
manual_dir (or absolute).
"""

    def records(self, manual_dir: Path) -> list[core.Record]:
        from reiqa_jax.scoring.scores_csv import ScoresCsvError, read_scores_csv

        labels = manual_dir / "scores.csv"
        if not labels.is_file():
            raise core.DatasetError(f"no scores.csv in {manual_dir}")
        try:
            rows = read_scores_csv(labels)
        except ScoresCsvError as exc:
            raise core.DatasetError(str(exc)) from None
        tree = core.CaseInsensitiveTree(manual_dir)
        missing = [e for e, r in zip(rows.entries, rows.resolved) if not Path(r).is_file()
                   and tree.find(e) is None]
        if missing:
            raise core.DatasetError(f"{labels}: {len(missing)} listed image(s) missing: "
                                    f"{', '.join(missing[:5])}")
        seen, out = set(), []
        for k, (entry, resolved) in enumerate(zip(rows.entries, rows.resolved)):
            found = Path(resolved) if Path(resolved).is_file() else tree.find(entry)
            path = Path(resolved).as_posix() if Path(entry).is_absolute() else core.relative(
                found, manual_dir)
            if path in seen:
                raise core.DatasetError(f"{labels}: {entry} is listed twice")
            seen.add(path)
            out.append(core.Record(path=path, score=float(rows.scores[k]),
                                   content=rows.groups[k] if rows.groups else ""))
        return out
