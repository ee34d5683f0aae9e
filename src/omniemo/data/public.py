"""Public emotion corpora that no omniemo model trained on, read in their release layouts.

Each names a file's emotion (and speaker) in its file or folder name, so each reader is a pattern and a few
lines. None has an official split, and a corpus the models never heard is held out whole: ``split`` is ``all``,
except where it picks a part of the set (KDEF: the camera angle; CK+: the peak or the neutral first frame).

Speech: EmoDB (German), TESS (English), SAVEE (English, audio or video), EMOVO (Italian), ShEMO (Persian),
SUBESCO (Bangla), eNTERFACE'05 (English, video). Faces: JAFFE, KDEF, CK+.
"""

from __future__ import annotations

import re
from pathlib import Path

from omniemo.data.base import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    MEDIA_SUFFIXES,
    VIDEO_SUFFIXES,
    DatasetError,
    Item,
    coded_files,
    select_split,
)
from omniemo.labels import CKPLUS, EMODB, EMOVO, ENTERFACE, JAFFE, KDEF, SAVEE, SHEMO, SUBESCO, TESS


def _suffixes(modality: str) -> set[str]:
    """The file kinds a corpus with both audio and video files is read from (``--modality``)."""
    return {"any": MEDIA_SUFFIXES, "audio": AUDIO_SUFFIXES, "video": VIDEO_SUFFIXES,
            "audio-video": VIDEO_SUFFIXES}[modality]


# --- speech ------------------------------------------------------------------------------------------------

EMODB_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")
EMODB_MALE = {"03", "10", "11", "12", "15"}


def emodb_items(root: Path, split: str = "all") -> list[Item]:
    """EmoDB (Berlin): ``wav/03a01Fa.wav``: speaker, text, the emotion's German initial, version."""
    items = []
    for path, m in coded_files(root, EMODB_NAME, MEDIA_SUFFIXES):
        speaker, text, emotion, _ = m.groups()
        items.append(Item(path.stem, str(path), EMODB.from_code(emotion), speaker=f"speaker-{speaker}", split="all",
                          meta={"text": text, "sex": "male" if speaker in EMODB_MALE else "female"}))
    return select_split(items, split)


TESS_NAME = re.compile(r"^([OY]AF?)_([a-z]+)_(angry|disgust|fear|happy|neutral|sad|ps|pleasant_surprised?)$",
                       re.IGNORECASE)


def tess_items(root: Path, split: str = "all") -> list[Item]:
    """TESS (Toronto): ``OAF_angry/OAF_back_angry.wav``: the older (OAF) or younger (YAF) speaker, the word,
    the emotion (``ps``: pleasant surprise)."""
    items = {}
    for path, m in coded_files(root, TESS_NAME, MEDIA_SUFFIXES):
        speaker, word, emotion = m.groups()
        speaker = speaker.upper()[:2] + "F"  # one file of the release is named OA_...
        key = f"{speaker}_{word.lower()}_{emotion.lower()}"
        # some copies of the download hold the whole set twice (a nested second folder): each recording once
        items.setdefault(key, Item(key, str(path), TESS.from_code(emotion.lower()), speaker=f"speaker-{speaker}",
                                   split="all", meta={"word": word.lower(), "sex": "female"}))
    return select_split(list(items.values()), split)


SAVEE_NAME = re.compile(r"^(?:(DC|JE|JK|KL)_)?(a|d|f|h|n|sa|su)(\d\d)$")
SAVEE_SPEAKERS = {"DC", "JE", "JK", "KL"}


def savee_items(root: Path, split: str = "all", modality: str = "any") -> list[Item]:
    """SAVEE (Surrey, four male speakers): ``AudioData/DC/sa01.wav`` and ``AudioVisualClip/DC/sa01.avi``, or
    flat ``DC_sa01.wav``; the emotion is the name's letters (a, d, f, h, n, sa, su)."""
    items = []
    for path, m in coded_files(root, SAVEE_NAME, _suffixes(modality)):
        prefix, code, number = m.groups()
        speaker = prefix or next((part for part in reversed(path.parent.parts) if part in SAVEE_SPEAKERS), None)
        if speaker is None:
            raise DatasetError(f"{path}: no SAVEE speaker (DC, JE, JK, KL) in its folder or name")
        kind = "audio" if path.suffix.lower() in AUDIO_SUFFIXES else "video"
        items.append(Item(f"{speaker}_{code}{number}{'' if kind == 'audio' else path.suffix.lower()}", str(path),
                          SAVEE.from_code(code), speaker=f"speaker-{speaker}", split="all",
                          meta={"media": kind, "sex": "male"}))
    return select_split(items, split)


EMOVO_NAME = re.compile(r"^(dis|gio|neu|pau|rab|sor|tri)-([fm][1-3])-([a-z]\d)$", re.IGNORECASE)


def emovo_items(root: Path, split: str = "all") -> list[Item]:
    """EMOVO (Italian): ``f1/dis-f1-b1.wav``: the emotion's Italian stem, the actor, the sentence."""
    items = []
    for path, m in coded_files(root, EMOVO_NAME, MEDIA_SUFFIXES):
        emotion, actor, sentence = (g.lower() for g in m.groups())
        items.append(Item(path.stem.lower(), str(path), EMOVO.from_code(emotion), speaker=f"actor-{actor}", split="all",
                          meta={"sentence": sentence, "sex": "female" if actor[0] == "f" else "male"}))
    return select_split(items, split)


SHEMO_NAME = re.compile(r"^([FM])(\d\d)([AFHNSW])(\d\d)$")


def shemo_items(root: Path, split: str = "all") -> list[Item]:
    """ShEMO (Persian radio plays): ``female/F01A01.wav``: sex, speaker, emotion letter (W: surprise), utterance."""
    items = []
    for path, m in coded_files(root, SHEMO_NAME, MEDIA_SUFFIXES):
        sex, number, emotion, _ = m.groups()
        items.append(Item(path.stem, str(path), SHEMO.from_code(emotion), speaker=f"speaker-{sex}{number}", split="all",
                          meta={"sex": "female" if sex == "F" else "male"}))
    return select_split(items, split)


SUBESCO_NAME = re.compile(r"^([FM])_(\d\d)_([A-Z]+)_S_(\d+)_(ANGRY|DISGUST|FEAR|HAPPY|NEUTRAL|SAD|SURPRISE)_(\d+)$",
                          re.IGNORECASE)


def subesco_items(root: Path, split: str = "all") -> list[Item]:
    """SUBESCO (Bangla): ``F_01_OISHI_S_10_ANGRY_1.wav``: sex, speaker, name, sentence, emotion, take."""
    items = []
    for path, m in coded_files(root, SUBESCO_NAME, MEDIA_SUFFIXES):
        sex, number, _, sentence, emotion, _ = m.groups()
        items.append(Item(path.stem, str(path), SUBESCO.from_code(emotion), speaker=f"speaker-{sex.upper()}{number}",
                          split="all", meta={"sentence": sentence, "sex": "female" if sex.upper() == "F" else "male"}))
    return select_split(items, split)


ENTERFACE_FOLDERS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
                     "sadness": "sad", "surprise": "surprise"}
ENTERFACE_SUBJECT = re.compile(r"^subject\s*(\d+)$", re.IGNORECASE)
ENTERFACE_NAME = re.compile(r"^s_?(\d+)_(an|di|fe|ha|sa|su)_(\d+)$", re.IGNORECASE)


def enterface_items(root: Path, split: str = "all", modality: str = "video") -> list[Item]:
    """eNTERFACE'05 (audio-visual): ``subject 1/anger/sentence 1/s1_an_1.avi``, emotion and subject read from the
    folders (the file names are not uniform across subjects), or flat ``s12_su_3.avi`` files, read from the name.
    Video by default; ``modality="audio"`` takes audio files extracted beside them instead."""
    items = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in _suffixes(modality) or not path.is_file():
            continue
        parts = path.relative_to(root).parts[:-1]
        emotion = next((ENTERFACE_FOLDERS[p.lower()] for p in parts if p.lower() in ENTERFACE_FOLDERS), None)
        subject = next((m.group(1) for m in map(ENTERFACE_SUBJECT.match, parts) if m), None)
        named = ENTERFACE_NAME.match(path.stem)
        if (emotion is None or subject is None) and named:
            subject, code, _ = named.groups()
            emotion = ENTERFACE.from_code(code.lower())
        if emotion is None or subject is None:
            continue
        items.append(Item(str(path.relative_to(root)), str(path), emotion, speaker=f"subject-{int(subject)}", split="all"))
    return select_split(items, split)


# --- faces -------------------------------------------------------------------------------------------------

JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d\.(\d+)$")


def jaffe_items(root: Path, split: str = "all") -> list[Item]:
    """JAFFE: ``KA.AN1.39.tiff``: the poser's initials, the expression (AN DI FE HA NE SA SU) and its take."""
    items = [Item(path.name, str(path), JAFFE.from_code(m.group(2)), speaker=f"poser-{m.group(1)}", split="all")
             for path, m in coded_files(root, JAFFE_NAME, IMAGE_SUFFIXES)]
    return select_split(items, split)


KDEF_NAME = re.compile(r"^([AB])([FM])(\d\d)(AF|AN|DI|HA|NE|SA|SU)(FL|FR|HL|HR|S)$", re.IGNORECASE)
KDEF_VIEWS = {"S": "frontal", "HL": "half", "HR": "half", "FL": "profile", "FR": "profile"}


def kdef_items(root: Path, split: str = "all") -> list[Item]:
    """KDEF: ``AF01/AF01ANS.JPG``: session, sex, poser, expression (AF: afraid), angle. The split is the view:
    ``frontal`` (S), ``half`` (HL, HR) or ``profile`` (FL, FR); ``all`` takes the five."""
    items = []
    for path, m in coded_files(root, KDEF_NAME, IMAGE_SUFFIXES):
        session, sex, poser, expression, angle = (g.upper() for g in m.groups())
        items.append(Item(path.stem.upper(), str(path), KDEF.from_code(expression), speaker=f"poser-{sex}{poser}",
                          split=KDEF_VIEWS[angle], meta={"session": session, "angle": angle,
                                                         "sex": "female" if sex == "F" else "male"}))
    return select_split(items, split)


CKPLUS_FRAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})_emotion$")


def ckplus_items(root: Path, split: str = "peak") -> list[Item]:
    """CK+: ``Emotion/S005/001/S005_001_00000011_emotion.txt`` holds the code (1-7) of the sequence whose last
    image is ``cohn-kanade-images/S005/001/S005_001_00000011.png``. Split ``peak``: that labelled peak frame
    (the usual 7-class protocol, contempt included); ``onset``: the sequence's first frame, as neutral; ``all``:
    both."""
    tables = sorted(root.rglob("*_emotion.txt"))
    if not tables:
        raise DatasetError(f"{root}: no CK+ Emotion/*_emotion.txt label files")
    sequences: dict[str, dict[str, Path]] = {}  # "S005_001" -> its frames by stem
    for path in root.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            sequences.setdefault(path.stem[:8], {})[path.stem] = path
    items = []
    for table in tables:
        m = CKPLUS_FRAME.match(table.stem)
        if not m:
            continue
        subject, sequence, frame = m.groups()
        try:
            label = CKPLUS.from_code(str(int(float(table.read_text().split()[0]))))
        except (IndexError, ValueError, KeyError) as exc:
            raise DatasetError(f"{table}: not a CK+ emotion code 1-7 ({exc})") from exc
        frames = sequences.get(f"{subject}_{sequence}", {})
        peak = f"{subject}_{sequence}_{frame}"
        items.append(Item(peak, str(frames.get(peak, table.with_name(f"{peak}.png"))), label,
                          speaker=f"subject-{subject}", split="peak", meta={"sequence": sequence}))
        onset = min(frames, default=peak)
        if onset != peak:
            items.append(Item(onset, str(frames[onset]), "neutral", speaker=f"subject-{subject}", split="onset",
                              meta={"sequence": sequence}))
    return select_split(items, split)
