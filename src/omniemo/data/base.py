"""What every dataset adapter shares: the item, the error, the file kinds, and small helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".flv", ".m4v", ".mpg", ".mpeg", ".3gp", ".ts"}
MEDIA_SUFFIXES = AUDIO_SUFFIXES | VIDEO_SUFFIXES
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class DatasetError(ValueError):
    """A dataset root that cannot be read (the message names the file and what is wrong)."""


@dataclass
class Item:
    id: str
    path: str
    label: str
    speaker: str | None = None
    split: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class CheckReport:
    dataset: str
    root: str
    split: str
    items: int
    missing: list[str]
    unreadable: list[str]
    label_counts: dict[str, int]
    speakers: int

    @property
    def ok(self) -> bool:
        return self.items > 0 and not self.missing and not self.unreadable


def media_index(root: Path) -> dict[str, Path]:
    """Media files under ``root`` by file stem (the release formats name clips by id)."""
    return {p.stem: p for p in root.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file()}


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: not found ({what})")
    return path


def select_split(items: list[Item], split: str) -> list[Item]:
    if split == "all":
        return items
    return [i for i in items if i.split == split]


def coded_files(root: Path, pattern: re.Pattern, suffixes: set[str]):
    """(path, match) for each file under ``root`` with one of ``suffixes`` whose stem matches ``pattern``,
    in a stable order: the release formats name each file's emotion, speaker and take in its name."""
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file():
            match = pattern.match(path.stem)
            if match:
                yield path, match
