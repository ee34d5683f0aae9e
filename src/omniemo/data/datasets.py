"""Adapters for DFEW, MAFW, RAVDESS, CREMA-D, ASED, URDU, MER2023/EMER, face images, a user's folder of clips, a JSONL
manifest, the R1-Omni training JSON, (``omniemo.data.public``) public corpora no model here trained on, and
(``omniemo.data.face_sets``) FER2013 and RAF-DB in their release layouts.

Splits: the official folds where they exist (DFEW, MAFW: ``fold`` 1-5, ``split`` train/test); speaker-
independent splits where not (RAVDESS: train actors 01-16, dev 17-20, test 21-24; CREMA-D: train 1001-1024,
dev 1025-1030, test 1031-1091; ASED: train speakers 01-45, dev 46-55, test 56-65; URDU: by speaker id, see
``urdu_split``). ``split="all"`` takes everything.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from omniemo.answers import extract_answer
from omniemo.data import face_sets, public
from omniemo.data.base import (
    IMAGE_SUFFIXES,
    MEDIA_SUFFIXES,
    CheckReport,
    DatasetError,
    Item,
    coded_files,
    media_index,
    need,
    select_split,
)
from omniemo.labels import (
    ASED,
    CREMAD,
    DFEW,
    MAFW,
    MER2023,
    RAVDESS,
    URDU,
    LabelSet,
    get_labelset,
)

# --- DFEW -------------------------------------------------------------------------------------------------

def dfew_items(root: Path, split: str = "test", fold: int = 1) -> list[Item]:
    """EmoLabel_DataSplit/{train,test}(single-labeled)/set_{fold}.csv: video_name,label (1-7)."""
    base = need(root / "EmoLabel_DataSplit", "DFEW label folder")
    index = media_index(root)
    items = []
    for part in (("train", "test") if split == "all" else (split,)):
        table = need(base / f"{part}(single-labeled)" / f"set_{fold}.csv", "DFEW fold file")
        with table.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                name = str(row["video_name"]).strip()
                stem = name.zfill(5) if name.isdigit() else name
                path = index.get(stem) or index.get(name)
                items.append(Item(stem, str(path or root / "Clip" / f"{stem}.mp4"), DFEW.from_code(row["label"]),
                                  split=part, meta={"fold": fold}))
    return items


# --- MAFW -------------------------------------------------------------------------------------------------

def mafw_items(root: Path, split: str = "test", fold: int = 1) -> list[Item]:
    """'Train & Test Set/single/no_caption/set_{fold}/{train,test}.txt': '<clip>.mp4 <label>'; clips in data/clips."""
    matches = list(root.rglob(f"single/no_caption/set_{fold}"))
    if not matches:
        raise DatasetError(f"{root}: no 'single/no_caption/set_{fold}' folder (MAFW label files)")
    index = media_index(root)
    items = []
    for part in (("train", "test") if split == "all" else (split,)):
        table = need(matches[0] / f"{part}.txt", "MAFW split file")
        for number, line in enumerate(table.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) < 2:
                raise DatasetError(f"{table}:{number}: expected '<clip> <label>'")
            clip, label = parts[0], parts[1]
            path = index.get(Path(clip).stem, root / "data" / "clips" / clip)
            items.append(Item(Path(clip).stem, str(path), MAFW.from_code(label), split=part, meta={"fold": fold}))
    return items


# --- RAVDESS ----------------------------------------------------------------------------------------------

RAVDESS_NAME = re.compile(r"^(0[123])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)$")


def ravdess_split(actor: int) -> str:
    return "train" if actor <= 16 else "dev" if actor <= 20 else "test"


def ravdess_items(root: Path, split: str = "test", modality: str = "any", channel: str = "any") -> list[Item]:
    """Files named MM-VV-EE-II-SS-RR-AA, flat or in Actor_XX/; modality 01 audio-video, 02 video, 03 audio."""
    wanted_modality = {"any": None, "audio-video": "01", "video": "02", "audio": "03"}[modality]
    wanted_channel = {"any": None, "speech": "01", "song": "02"}[channel]
    items = []
    for path, m in coded_files(root, RAVDESS_NAME, MEDIA_SUFFIXES):
        mod, voc, emo, intensity, statement, rep, actor = m.groups()
        if (wanted_modality and mod != wanted_modality) or (wanted_channel and voc != wanted_channel):
            continue
        n = int(actor)
        items.append(Item(path.stem, str(path), RAVDESS.from_code(emo), speaker=f"actor-{actor}", split=ravdess_split(n),
                          meta={"modality": mod, "channel": "speech" if voc == "01" else "song",
                                "intensity": "strong" if intensity == "02" else "normal", "sex": "male" if n % 2 else "female"}))
    return select_split(items, split)


# --- CREMA-D ----------------------------------------------------------------------------------------------

CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{2})$")


def cremad_split(actor: int) -> str:
    return "train" if actor <= 1024 else "dev" if actor <= 1030 else "test"


CREMAD_VOTES = {"multimodal": "MultiModalVote", "voice": "VoiceVote", "face": "FaceVote"}


def cremad_items(root: Path, split: str = "test", media: str = "any", perceived: bool | str = False) -> list[Item]:
    """VideoFlash/*.flv, AudioWAV/*.wav, AudioMP3/*.mp3 (or any folder of such files); ``perceived`` takes the
    crowd's vote from summaryTable.csv instead of the acted label: what raters chose seeing and hearing the clip
    (``True`` or "multimodal"), hearing the voice alone ("voice") or seeing the face alone ("face"). A tied vote
    counts as the first of its emotions."""
    folders = {"video": ("VideoFlash",), "wav": ("AudioWAV",), "mp3": ("AudioMP3",)}.get(media)
    votes = {}
    if perceived:
        column = CREMAD_VOTES.get("multimodal" if perceived is True else perceived)
        if column is None:
            raise DatasetError(f"perceived={perceived!r}: use {', '.join(CREMAD_VOTES)}")
        tables = list(root.rglob("*summaryTable.csv"))
        if not tables:
            raise DatasetError(f"{root}: --perceived needs summaryTable.csv")
        with tables[0].open(newline="") as handle:
            for row in csv.DictReader(handle):
                vote = row[column].split(":")[0]
                if vote in CREMAD.codes:
                    votes[row["FileName"]] = CREMAD.from_code(vote)
    sexes = {}
    for table in root.rglob("VideoDemographics.csv"):
        with table.open(newline="") as handle:
            sexes = {row["ActorID"]: row["Sex"].lower() for row in csv.DictReader(handle)}
    items = []
    for path, m in coded_files(root, CREMAD_NAME, MEDIA_SUFFIXES):
        if folders and path.parent.name not in folders:
            continue
        actor, sentence, emotion, level = m.groups()
        label = votes.get(path.stem) if perceived else CREMAD.from_code(emotion)
        if label is None:
            continue
        items.append(Item(f"{path.stem}{path.suffix.lower()}", str(path), label, speaker=f"actor-{actor}",
                          split=cremad_split(int(actor)), meta={"sentence": sentence, "level": level, "acted": CREMAD.from_code(emotion),
                                                            "sex": sexes.get(actor, "unknown")}))
    return select_split(items, split)


# --- ASED (Amharic) ----------------------------------------------------------------------------------------

ASED_NAME = re.compile(r"^([nfhsa][1-5])-(\d\d)-(\d\d)-(0[12])-(\d\d)$", re.IGNORECASE)


def ased_split(speaker: int) -> str:
    return "train" if speaker <= 45 else "dev" if speaker <= 55 else "test"


def ased_items(root: Path, split: str = "test") -> list[Item]:
    """ASED v1: folders 01Neutral ... 05Angry (or flat) of ``xn-ss-rr-gg-pp`` files: emotion letter + number,
    sentence, repetition, gender (01 female, 02 male), speaker 01-65. No official split: by speaker."""
    items = []
    for path, m in coded_files(root, ASED_NAME, MEDIA_SUFFIXES):
        code, sentence, repetition, gender, speaker = m.groups()
        items.append(Item(path.stem, str(path), ASED.from_code(code.upper()), speaker=f"speaker-{speaker}",
                          split=ased_split(int(speaker)), meta={"sentence": sentence, "repetition": repetition,
                                                               "sex": "female" if gender == "01" else "male"}))
    return select_split(items, split)


# --- URDU ------------------------------------------------------------------------------------------------

URDU_NAME = re.compile(r"^S([MF])(\d+)_F(\d+)_([AHNS])(\d+)$")
# Most URDU speakers show one emotion only, so a speaker split cannot be balanced; these sets put every emotion in
# each part: test 122 files (angry 28, happy 40, neutral 16, sad 38), dev 54, train the other 224.
URDU_TEST = {"SM2", "SM24", "SM7", "SM20", "SF9", "SM22", "SF1"}
URDU_DEV = {"SM1", "SM23", "SF6", "SM21", "SM27", "SF11"}


def urdu_split(speaker: str) -> str:
    return "test" if speaker in URDU_TEST else "dev" if speaker in URDU_DEV else "train"


def urdu_items(root: Path, split: str = "test") -> list[Item]:
    """URDU (talk-show speech): folders Angry Happy Neutral Sad (or flat) of ``S{M|F}{speaker}_F{clip}_{A|H|N|S}{nn}``
    files. No official split: by speaker (``urdu_split``)."""
    items = []
    for path, m in coded_files(root, URDU_NAME, MEDIA_SUFFIXES):
        sex, number, clip, code, _ = m.groups()
        speaker = f"S{sex}{int(number)}"
        items.append(Item(path.stem, str(path), URDU.from_code(code), speaker=f"speaker-{speaker}", split=urdu_split(speaker),
                          meta={"clip": clip, "sex": "female" if sex == "F" else "male"}))
    return select_split(items, split)


# --- MER2023 / EMER -------------------------------------------------------------------------------------

def mer2023_items(root: Path, split: str = "all", labels_csv: str | None = None) -> list[Item]:
    """A label csv with columns name and discrete (or emotion/emotions), and the clips anywhere under root.
    An EMER reasoning csv (name, emotions, subtitles, reasons) works too; its reasons are kept in meta."""
    tables = [root / labels_csv] if labels_csv else sorted(p for p in root.rglob("*.csv"))
    if not tables:
        raise DatasetError(f"{root}: no label csv found")
    index = media_index(root)
    items = []
    for table in tables:
        with need(table, "MER2023 label csv").open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            column = next((c for c in ("discrete", "emotion", "emotions", "label") if c in (reader.fieldnames or [])), None)
            if column is None or "name" not in (reader.fieldnames or []):
                continue
            for row in reader:
                label = MER2023.normalize(row[column])
                if label is None:
                    continue
                name = row["name"].strip()
                meta = {k: row[k] for k in ("subtitles", "reasons") if k in row}
                items.append(Item(name, str(index.get(Path(name).stem, root / f"{name}.mp4")), label, split="all", meta=meta))
    if not items:
        raise DatasetError(f"{root}: no csv with 'name' and an emotion column")
    return items


# --- still images (face sets) ---------------------------------------------------------------------------------

def _vocabulary_hint(labelset) -> str:
    return (f"{', '.join(labelset.labels)}; --labels names another set, e.g. mafw, or a comma list of the set's"
            " emotions such as happy,sad,contempt")


def _labelled_folder(root: Path, split: str, labels: str, suffixes: set[str], what: str) -> list[Item]:
    """A ``labels.csv`` of ``file,label`` (optional ``speaker`` and ``split`` columns) under ``root``, or one
    folder per label (``root/happy/...``, any depth below it; a folder name is read like an answer, so
    ``OAF_angry`` or ``05Angry`` is angry), or one folder per speaker holding one per label
    (``root/0011/Angry/...``), or, where no folder names an emotion, files that name theirs
    (``female1_angry_1a_1.wav``); a folder named train, dev (val, evaluation) or test below a label folder gives the
    split. Labels are read in the run's label set."""
    labelset = get_labelset(labels)
    table = root / "labels.csv"
    items = []
    if table.is_file():
        with table.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not {"file", "label"} <= set(reader.fieldnames or []):
                raise DatasetError(f"{table}: needs the columns file and label")
            for number, row in enumerate(reader, 2):
                label = _label(row["label"], labelset)
                if label is None:
                    raise DatasetError(f"{table}:{number}: label {row['label']!r} is not in the {labelset.name} vocabulary"
                                       f" ({_vocabulary_hint(labelset)})")
                items.append(Item(row["file"], str(root / row["file"]), label, speaker=row.get("speaker") or None,
                                  split=row.get("split") or "all"))
    else:
        folders = _label_folders(root, labelset)
        if not any(_label(folder.name, labelset) for folder, _ in folders):
            items = _named_files(root, labelset, suffixes)
            folders = folders if not items else []
        for folder, speaker in folders:
            label = _label(folder.name, labelset)
            if label is None:
                raise DatasetError(f"{folder}: the folder name is not an emotion of the {labelset.name} vocabulary"
                                   f" ({_vocabulary_hint(labelset)})")
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in suffixes and path.is_file():
                    items.append(Item(str(path.relative_to(root)), str(path), label, speaker=speaker,
                                      split=_split_folder(path.relative_to(folder))))
    if not items:
        raise DatasetError(f"{root}: no {what} (a labels.csv of file,label, or one folder per label)")
    return items if split == "all" else select_split(items, split)


def _label_folders(root: Path, labelset) -> list[tuple[Path, str | None]]:
    """(folder, speaker) for each folder that should name a label: ``root/<label>/`` (no speaker), or
    ``root/<speaker>/<label>/`` when no top folder names an emotion and folders below them do (ESD's
    ``0011/Angry/``, CASIA's ``liuchanghe/angry/``)."""
    top = sorted(p for p in root.iterdir() if p.is_dir())
    below = {p: sorted(q for q in p.iterdir() if q.is_dir()) for p in top}
    if not any(_label(p.name, labelset) for p in top) and any(
            _label(q.name, labelset) for folders in below.values() for q in folders):
        return [(q, p.name) for p, folders in below.items() for q in folders]
    return [(p, None) for p in top]


def _named_files(root: Path, labelset, suffixes: set[str]) -> list[Item]:
    """Files whose own names name their emotion, where no folder does (JL-Corpus's ``female1_angry_1a_1.wav``,
    MESD's ``Anger_C_A_abajo.wav``, RaFD's ``Rafd090_01_Caucasian_female_angry_frontal.jpg``): [] if none does; a
    DatasetError names a file that names none (or two) when others do."""
    files = [p for p in sorted(root.rglob("*")) if p.suffix.lower() in suffixes and p.is_file()]
    named = [(p, _label(p.stem, labelset)) for p in files]
    unnamed = [p for p, label in named if label is None]
    if len(unnamed) == len(named):
        return []
    if unnamed:
        raise DatasetError(f"{unnamed[0]}: its name names no one emotion of the {labelset.name} vocabulary, where"
                           f" {len(named) - len(unnamed)} other files' names do ({len(unnamed)} such files;"
                           f" {_vocabulary_hint(labelset)})")
    return [Item(str(p.relative_to(root)), str(p), label, split=_split_folder(p.relative_to(root)))
            for p, label in named]


# a folder between the label folder and the file that names a split (ESD: Angry/train, Angry/evaluation, Angry/test)
_SPLIT_FOLDERS = {"train": "train", "training": "train", "dev": "dev", "val": "dev", "valid": "dev",
                  "validation": "dev", "evaluation": "dev", "test": "test", "testing": "test"}


def _split_folder(below_label: Path) -> str:
    return next((_SPLIT_FOLDERS[part.lower()] for part in below_label.parts[:-1] if part.lower() in _SPLIT_FOLDERS),
                "all")


def image_items(root: Path, split: str = "all", labels: str = "dfew") -> list[Item]:
    """Face images, as a labels.csv or one folder per label (FER2013's seven words are dfew's)."""
    return _labelled_folder(root, split, labels, IMAGE_SUFFIXES, "images")


def clip_items(root: Path, split: str = "all", labels: str = "dfew") -> list[Item]:
    """A user's own corpus: audio, video or image files, as a labels.csv or one folder per label."""
    return _labelled_folder(root, split, labels, MEDIA_SUFFIXES | IMAGE_SUFFIXES, "audio, video or image files")


# --- generic manifest and the R1-Omni training JSON -----------------------------------------------------

def manifest_items(root: Path, split: str = "all", labels: str = "dfew") -> list[Item]:
    """A JSONL file (or a folder holding manifest.jsonl): path, label, optional speaker, split, id."""
    path = root if root.is_file() else need(root / "manifest.jsonl", "manifest")
    labelset = get_labelset(labels)
    items = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            media = Path(row["path"])
            label = _label(row["label"], labelset)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: needs JSON with 'path' and 'label' ({exc})") from exc
        if label is None:
            raise DatasetError(f"{path}:{number}: label {row['label']!r} is not in the {labelset.name} vocabulary"
                               f" ({_vocabulary_hint(labelset)})")
        media = media if media.is_absolute() else path.parent / media
        items.append(Item(str(row.get("id", media.stem)), str(media), label, speaker=row.get("speaker"),
                          split=row.get("split", "all")))
    if not items:
        raise DatasetError(f"{path}: the manifest is empty (no JSON lines with 'path' and 'label')")
    return items if split == "all" else select_split(items, split)


def r1omni_items(root: Path, split: str = "all", labels: str = "mafw", on_bad=None) -> list[Item]:
    """The R1-Omni training JSON: a list of {video, conversations}; the label is the gpt turn's answer.

    ``meta`` keeps the gpt turn (``target``), its answer as written (``answer``) and the human turn without its
    media placeholders (``instruction``). A bad entry raises DatasetError, or with ``on_bad(cause, what)`` is
    reported there and skipped (training goes on past it).
    """
    path = root if root.is_file() else next(iter(sorted(root.glob("*.json"))), None)
    if path is None:
        raise DatasetError(f"{root}: no .json file")
    labelset = get_labelset(labels)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg})") from exc
    items = []
    for i, row in enumerate(rows):
        turns = {t.get("from"): t.get("value") or "" for t in row.get("conversations", []) if isinstance(t, dict)}
        answer = turns.get("gpt", "").strip()
        label = labelset.normalize(extract_answer(answer)) if answer else None
        if label is None or "video" not in row:
            cause = "rows without a video" if "video" not in row else "rows with an empty or unknown label"
            if on_bad is None:
                raise DatasetError(f"{path}: entry {i} has no video or no answer in the {labelset.name} vocabulary")
            on_bad(cause, f"entry {i}: {answer[:40]!r}")
            continue
        media = Path(row["video"])
        media = media if media.is_absolute() else path.parent / media
        instruction = _PLACEHOLDERS.sub("", turns.get("human", "")).strip()
        items.append(Item(f"{i:06d}-{media.stem}", str(media), label, split="all",
                          meta={"target": answer, "answer": extract_answer(answer).strip(), "instruction": instruction}))
    return items


_PLACEHOLDERS = re.compile(r"<(video|audio|image)>\s*")


def _label(value, labelset: LabelSet) -> str | None:
    try:
        return labelset.from_code(str(value))
    except KeyError:
        return labelset.normalize(str(value))


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    labels: str
    reader: object
    default_split: str
    labels_from_run: bool = False  # the items' labels are read (and scored) in the run's label set


DATASETS: dict[str, DatasetSpec] = {
    "dfew": DatasetSpec("dfew", "dfew", dfew_items, "test"),
    "mafw": DatasetSpec("mafw", "mafw", mafw_items, "test"),
    "ravdess": DatasetSpec("ravdess", "ravdess", ravdess_items, "test"),
    "cremad": DatasetSpec("cremad", "cremad", cremad_items, "test"),
    "ased": DatasetSpec("ased", "ased", ased_items, "test"),
    "urdu": DatasetSpec("urdu", "urdu", urdu_items, "test"),
    "mer2023": DatasetSpec("mer2023", "mer2023", mer2023_items, "all"),
    "manifest": DatasetSpec("manifest", "dfew", manifest_items, "all", labels_from_run=True),
    "images": DatasetSpec("images", "dfew", image_items, "all", labels_from_run=True),
    "clips": DatasetSpec("clips", "dfew", clip_items, "all", labels_from_run=True),
    "r1omni": DatasetSpec("r1omni", "mafw", r1omni_items, "all"),
    # public corpora in their release layouts (omniemo.data.public): never trained on, held out whole
    "emodb": DatasetSpec("emodb", "emodb", public.emodb_items, "all"),
    "tess": DatasetSpec("tess", "tess", public.tess_items, "all"),
    "savee": DatasetSpec("savee", "savee", public.savee_items, "all"),
    "emovo": DatasetSpec("emovo", "emovo", public.emovo_items, "all"),
    "shemo": DatasetSpec("shemo", "shemo", public.shemo_items, "all"),
    "subesco": DatasetSpec("subesco", "subesco", public.subesco_items, "all"),
    "enterface": DatasetSpec("enterface", "enterface", public.enterface_items, "all"),
    "jaffe": DatasetSpec("jaffe", "jaffe", public.jaffe_items, "all"),
    "kdef": DatasetSpec("kdef", "kdef", public.kdef_items, "all"),
    "ckplus": DatasetSpec("ckplus", "ckplus", public.ckplus_items, "peak"),
    # the face sets the expression model trained on (train splits), in their release layouts: score their test splits
    "fer2013": DatasetSpec("fer2013", "fer2013", face_sets.fer2013_items, "test"),
    "rafdb": DatasetSpec("rafdb", "rafdb", face_sets.rafdb_items, "test"),
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}") from None


def load_items(name: str, root: str | Path, split: str | None = None, **options) -> list[Item]:
    spec = get_dataset(name)
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset root not found")
    accepted = inspect.signature(spec.reader).parameters
    for option in options:
        if option not in accepted:
            takers = [n for n, s in DATASETS.items() if option in inspect.signature(s.reader).parameters]
            raise DatasetError(f"--{option}: {name} has no such option (it applies to {', '.join(takers) or 'none'})")
    items = spec.reader(root, split or spec.default_split, **options)
    seen: dict[str, str] = {}
    for item in items:  # a run keys its rows by id: two files under one id would overwrite each other's result
        if seen.setdefault(item.id, item.path) != item.path:
            raise DatasetError(f"{root}: two files under the id {item.id!r}: {seen[item.id]} and {item.path}"
                               " (a manifest can name them apart with an 'id' field)")
    return items


def _detect_one(folder: Path) -> tuple[str, int] | None:
    found = []
    for name, spec in DATASETS.items():
        if spec.labels_from_run or name == "r1omni":
            continue  # a user's own layouts and the training JSON are named, never guessed
        try:
            found.append((len(spec.reader(folder, "all")), name))
        except (DatasetError, OSError, ValueError, KeyError):
            continue  # not this dataset's layout
    count, name = max(found, key=lambda f: f[0], default=(0, None))
    return (name, count) if count else None


def detect(root: str | Path) -> list[tuple[str, Path, int]]:
    """The named datasets under ``root``: (name, folder, items) for each folder directly below it that an
    adapter reads (the one reading the most items), or for ``root`` itself when none of them is one; a
    DatasetError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        hit = _detect_one(folder)
        if hit:
            found.append((hit[0], folder, hit[1]))
    if not found:
        hit = _detect_one(root)
        if hit is None:
            raise DatasetError(f"{root}: no dataset layout omniemo knows, in it or in the folders directly below it (a"
                               " corpus of your own, one folder per emotion: omniemo eval --dataset clips --root DIR)")
        found = [(hit[0], root, hit[1])]
    return found


def check(name: str, root: str | Path, split: str | None = None, **options) -> CheckReport:
    """List a split and report files that are missing or empty, label counts and speakers."""
    items = load_items(name, root, split, **options)
    missing = [i.path for i in items if not Path(i.path).exists()]
    unreadable = [i.path for i in items if Path(i.path).exists() and Path(i.path).stat().st_size == 0]
    return CheckReport(dataset=name, root=str(root), split=split or get_dataset(name).default_split, items=len(items),
                       missing=missing, unreadable=unreadable, label_counts=dict(Counter(i.label for i in items)),
                       speakers=len({i.speaker for i in items if i.speaker}))
