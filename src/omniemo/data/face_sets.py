"""FER2013 and RAF-DB in their release layouts: the face sets omniemo's expression model trained on (their training
splits only), so that their test splits, the standard face benchmarks, are scored with one command:

    omniemo eval --dataset fer2013 --root DIR --modalities face     # split test: the challenge's PrivateTest
    omniemo eval --dataset rafdb --root RAF-DB/basic --modalities face

FER2013 comes as the challenge's ``fer2013.csv`` (``emotion,pixels,Usage``: each face as 48 x 48 grey values in
the file), or as the common image-folder copy (``train/<emotion>/*.png``, ``test/<emotion>/*.png``). The
pipeline reads files, so the faces of the CSV are written once as PNG files to a cache folder
(``$XDG_CACHE_HOME/omniemo``, by default ``~/.cache/omniemo``). RAF-DB basic comes as ``EmoLabel/
list_patition_label.txt`` (``test_0001.jpg 5``, codes 1-7) beside ``Image/aligned`` (read first) and ``Image/original``,
or as the common folder copy ``train/1..7``, ``test/1..7``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.data.base import IMAGE_SUFFIXES, DatasetError, Item, select_split
from omniemo.labels import FER2013, RAFDB

FER2013_SPLITS = {"Training": "train", "PublicTest": "publictest", "PrivateTest": "test"}


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "omniemo"


def _split_folders(root: Path) -> dict[str, Path]:
    """``train``, ``test`` (and ``val``/``validation``) folders directly below ``root``, by split name; none unless
    there is a ``test`` folder (the release copies have one)."""
    names = {"train": "train", "training": "train", "test": "test", "val": "validation", "validation": "validation"}
    found = {names[p.name.lower()]: p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names}
    return found if "test" in found else {}


def _folder_items(root: Path, labelset, what: str) -> list[Item]:
    """Items of split folders whose subfolders name an emotion by word or by the set's code."""
    items = []
    for split, folder in _split_folders(root).items():
        for emotion in sorted(p for p in folder.iterdir() if p.is_dir()):
            try:
                label = labelset.from_code(emotion.name)
            except KeyError:
                raise DatasetError(f"{emotion}: not an emotion of {what} ({', '.join(labelset.labels)} or its codes"
                                   f" {', '.join(labelset.codes)})") from None
            items += [Item(f"{split}/{emotion.name}/{path.name}", str(path), label, split=split)
                      for path in sorted(emotion.rglob("*")) if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    return items


def fer2013_items(root: Path, split: str = "test") -> list[Item]:
    """FER2013: ``fer2013.csv`` (in ``root``, or ``root`` itself) or ``train/`` and ``test/`` image folders. Splits
    of the CSV: ``train`` (Training), ``publictest`` (the usual validation set) and ``test`` (PrivateTest, the
    usual test set); of the folders: ``train`` and ``test``."""
    table = root if root.is_file() else root / "fer2013.csv"
    if table.is_file():
        items = _fer2013_csv(table, split)
    elif root.is_dir() and _split_folders(root):
        items = select_split(_folder_items(root, FER2013, "FER2013"), split)
    else:
        raise DatasetError(f"{root}: no fer2013.csv and no train/ or test/ image folders of FER2013")
    return items


def _fer2013_csv(table: Path, split: str) -> list[Item]:
    import cv2

    stat = table.stat()
    cache = _cache_root() / "fer2013" / f"{table.stem}-{stat.st_size}-{stat.st_mtime_ns}"
    items = []
    with table.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames or []):
            raise DatasetError(f"{table}: needs the columns emotion, pixels and Usage (the FER2013 challenge file)")
        for number, row in enumerate(reader, 2):
            usage = FER2013_SPLITS.get(row["Usage"])
            if usage is None:
                raise DatasetError(f"{table}:{number}: Usage {row['Usage']!r} is not one of {', '.join(FER2013_SPLITS)}")
            if split not in ("all", usage):
                continue
            path = cache / usage / f"{number - 2:05d}.png"
            try:
                label = FER2013.from_code(row["emotion"])
                if not path.is_file():  # written once, whole (the pipeline reads image files)
                    face = np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    files.write_bytes(path, cv2.imencode(".png", face)[1].tobytes())
            except (KeyError, ValueError) as exc:
                raise DatasetError(f"{table}:{number}: not a FER2013 row (emotion 0-6, 2,304 grey values): {exc}") from None
            items.append(Item(f"{usage}/{number - 2:05d}", str(path), label, split=usage))
    return items


def rafdb_items(root: Path, split: str = "test") -> list[Item]:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` with ``Image/aligned`` (or ``Image/original``), or
    ``train/`` and ``test/`` folders of ``1``-``7``. Splits ``train`` and ``test``."""
    table = root / "EmoLabel" / "list_patition_label.txt"
    if table.is_file():
        items = []
        for number, line in enumerate(table.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                name, code = line.split()
                label = RAFDB.from_code(code)
            except (KeyError, ValueError):
                raise DatasetError(f"{table}:{number}: not 'file code' with a code 1-7: {line!r}") from None
            stem = Path(name).stem
            aligned = root / "Image" / "aligned" / f"{stem}_aligned.jpg"
            path = aligned if aligned.is_file() else root / "Image" / "original" / name
            items.append(Item(stem, str(path), label, split=stem.split("_")[0]))
        return select_split(items, split)
    if root.is_dir() and _split_folders(root):
        return select_split(_folder_items(root, RAFDB, "RAF-DB"), split)
    raise DatasetError(f"{root}: no EmoLabel/list_patition_label.txt and no train/ or test/ folders of RAF-DB")
