"""Dataset adapters on miniature copies of each official layout, and the resumable eval harness."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from omniemo.cli import main
from omniemo.data.datasets import DatasetError, check, load_items
from omniemo.eval.engines import finished_ids
from omniemo.eval.runner import EvalConfig, comparison_table, run_eval
from omniemo.media.synth import write_clip
from omniemo.prediction import Prediction


@pytest.fixture(scope="module")
def tiny_media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    return {"mp4": write_clip(root / "c.mp4", 0.4, size=(64, 48)), "wav": write_clip(root / "c.wav", 0.4),
            "flv": write_clip(root / "c.flv", 0.4, size=(64, 48))}


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def test_dfew_layout(tmp_path, tiny_media):
    split = tmp_path / "EmoLabel_DataSplit"
    (split / "test(single-labeled)").mkdir(parents=True)
    (split / "train(single-labeled)").mkdir(parents=True)
    (split / "test(single-labeled)" / "set_1.csv").write_text("video_name,label\n1,4\n2,1\n3,7\n")
    (split / "train(single-labeled)" / "set_1.csv").write_text("video_name,label\n10,2\n")
    for name in ("00001", "00002", "00010"):
        _copy(tiny_media["mp4"], tmp_path / "Clip" / "original" / f"{name}.mp4")
    items = load_items("dfew", tmp_path)
    assert [(i.id, i.label) for i in items] == [("00001", "angry"), ("00002", "happy"), ("00003", "fear")]
    report = check("dfew", tmp_path)
    assert report.missing == [str(tmp_path / "Clip" / "00003.mp4")] and not report.ok
    assert len(load_items("dfew", tmp_path, "all")) == 4
    with pytest.raises(DatasetError, match="set_2.csv"):
        load_items("dfew", tmp_path, fold=2)


def test_mafw_layout(tmp_path, tiny_media):
    sets = tmp_path / "Train & Test Set" / "single" / "no_caption" / "set_1"
    sets.mkdir(parents=True)
    (sets / "test.txt").write_text("00025.mp4 anger\n00026.mp4 contempt\n00027.mp4 helplessness\n")
    (sets / "train.txt").write_text("00001.mp4 happiness\n")
    for name in ("00025", "00026", "00027"):
        _copy(tiny_media["mp4"], tmp_path / "data" / "clips" / f"{name}.mp4")
    items = load_items("mafw", tmp_path)
    assert [i.label for i in items] == ["angry", "contemptuous", "helpless"]
    assert check("mafw", tmp_path).ok
    assert check("mafw", tmp_path, "train").missing  # 00001.mp4 is not there


def test_ravdess_layout(tmp_path, tiny_media):
    names = ["01-01-05-01-01-01-02", "02-01-06-01-01-01-22", "03-01-02-02-01-01-22", "03-02-03-01-01-01-21",
             "03-01-08-01-01-01-17"]
    for n in names:
        folder = tmp_path / f"Actor_{n[-2:]}"
        _copy(tiny_media["wav" if n.startswith("03") else "mp4"], folder / f"{n}.{'wav' if n.startswith('03') else 'mp4'}")
    test = load_items("ravdess", tmp_path)
    assert sorted(i.label for i in test) == ["calm", "fear", "happy"]
    assert {i.speaker for i in test} == {"actor-21", "actor-22"}
    assert [i.label for i in load_items("ravdess", tmp_path, "test", modality="audio", channel="speech")] == ["calm"]
    assert [i.label for i in load_items("ravdess", tmp_path, "dev")] == ["surprise"]
    assert [i.meta["sex"] for i in load_items("ravdess", tmp_path, "train")] == ["female"]


def test_cremad_layout_and_perceived_labels(tmp_path, tiny_media):
    for name, folder, kind in (("1001_DFA_ANG_XX", "VideoFlash", "flv"), ("1040_IEO_SAD_HI", "AudioWAV", "wav"),
                               ("1041_TIE_NEU_XX", "AudioWAV", "wav")):
        _copy(tiny_media[kind], tmp_path / folder / f"{name}.{kind}")
    (tmp_path / "processedResults").mkdir()
    (tmp_path / "processedResults" / "summaryTable.csv").write_text(
        '"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel","MultiModalVote","MultiModalLevel"\n'
        '"1","1040_IEO_SAD_HI","N","60","S","70","N","65"\n"2","1041_TIE_NEU_XX","A:N","60","N","70","N","65"\n')
    assert [(i.label, i.split) for i in load_items("cremad", tmp_path)] == [("sad", "test"), ("neutral", "test")]
    assert [i.label for i in load_items("cremad", tmp_path, perceived=True)] == ["neutral", "neutral"]
    assert [i.label for i in load_items("cremad", tmp_path, perceived="voice")] == ["neutral", "angry"]  # a tie: its first
    assert [i.label for i in load_items("cremad", tmp_path, perceived="face")] == ["sad", "neutral"]
    with pytest.raises(DatasetError, match="use multimodal, voice, face"):
        load_items("cremad", tmp_path, perceived="crowd")
    assert [i.label for i in load_items("cremad", tmp_path, "all", media="video")] == ["angry"]


def test_mer2023_manifest_and_r1omni(tmp_path, tiny_media):
    _copy(tiny_media["mp4"], tmp_path / "video" / "sample_00000001.mp4")
    (tmp_path / "label-disdim.csv").write_text("name,discrete,valence\nsample_00000001,worried,-1\n")
    assert [(i.id, i.label) for i in load_items("mer2023", tmp_path)] == [("sample_00000001", "worried")]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "video/sample_00000001.mp4", "label": "Anger", "speaker": "s1", "split": "test"}) + "\n")
    items = load_items("manifest", manifest, labels="dfew")
    assert items[0].label == "angry" and items[0].path == str(tmp_path / "video" / "sample_00000001.mp4")
    manifest.write_text('{"path": "x.mp4", "label": "banana"}\n')
    with pytest.raises(DatasetError, match="m.jsonl:1"):
        load_items("manifest", manifest)
    r1 = tmp_path / "train.json"
    r1.write_text(json.dumps([{"video": "video/sample_00000001.mp4", "conversations": [
        {"from": "human", "value": "<video>\n<audio>\nAs an emotional recognition expert; ..."},
        {"from": "gpt", "value": "<think>...</think>\n<answer>anxious</answer>"}]}]))
    assert [i.label for i in load_items("r1omni", r1)] == ["anxious"]


class CountingPredictor:
    """A test double standing in for a model: reads the file's headers (so a corrupt file fails as it would in
    a real model) and answers from the file name."""

    name = "counting"
    calls = 0
    stop_after = None

    def __init__(self, **_):
        pass

    def predict(self, path, labels="dfew"):
        CountingPredictor.calls += 1
        if CountingPredictor.stop_after is not None and CountingPredictor.calls > CountingPredictor.stop_after:
            raise KeyboardInterrupt  # a kill in the middle of the run
        from omniemo import probe

        probe(path)
        label = "angry" if "ANG" in str(path) else "neutral"
        return Prediction(path=str(path), label=label, probabilities={label: 1.0},
                          output=f"<think>x</think>\n<answer>{label}</answer>")


@pytest.fixture
def counting(monkeypatch):
    import omniemo.predictor as predictor_module

    real = predictor_module.get_predictor
    monkeypatch.setattr(predictor_module, "get_predictor",
                        lambda backend="pipeline", **o: CountingPredictor() if backend == "counting" else real(backend, **o))
    CountingPredictor.calls, CountingPredictor.stop_after = 0, None
    return CountingPredictor


def _cremad_root(tmp_path, tiny_media):
    for name in ("1031_DFA_ANG_XX", "1032_DFA_ANG_XX", "1033_DFA_SAD_XX", "1034_DFA_NEU_XX"):
        _copy(tiny_media["wav"], tmp_path / "AudioWAV" / f"{name}.wav")
    (tmp_path / "AudioWAV" / "1035_bad_FEA_XX.wav").write_bytes(b"")  # not a CREMA-D name: ignored
    (tmp_path / "AudioWAV" / "1036_DFA_FEA_XX.wav").write_bytes(b"RIFF garbage, not audio" * 10)  # fails to open
    return tmp_path


def test_eval_resumes_after_a_kill_and_records_errors(tmp_path, tiny_media, counting):
    root = _cremad_root(tmp_path / "cremad", tiny_media)
    out = tmp_path / "run"
    config = EvalConfig(dataset="cremad", root=str(root), out_dir=str(out), model="counting")
    counting.stop_after = 3
    with pytest.raises(KeyboardInterrupt):
        run_eval(config)
    assert len(finished_ids(out / "predictions.jsonl")) == 3  # nothing finished was lost
    counting.stop_after = None
    counting.calls = 0
    summary = run_eval(config)
    assert counting.calls == 2 and summary["ran_now"] == 2  # only the unfinished items ran
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and [r["id"] for r in rows if "error" in r] == ["1036_DFA_FEA_XX.wav"]
    assert "1036_DFA_FEA_XX.wav" in rows[-1]["error"] or any("1036" in r.get("error", "") for r in rows)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["errors"] == 1 and scores["paper"]["n"] == 5
    assert scores["paper"]["war"] == pytest.approx(3 / 5)  # two angry + one neutral right; sad and the error wrong
    assert (out / "confusion-paper.png").stat().st_size > 1000 and (out / "run.json").exists()


def test_eval_table(tmp_path, tiny_media, counting):
    root = _cremad_root(tmp_path / "cremad", tiny_media)
    out = tmp_path / "run"
    run_eval(EvalConfig(dataset="cremad", root=str(root), out_dir=str(out), model="counting"))
    markdown, csv_text = comparison_table([out])
    assert "| omniemo counting |" in markdown and "R1-Omni (published, R1-Omni paper)" in markdown
    assert "65.83" in markdown and "RAVDESS (UAR) △" in markdown
    assert csv_text.splitlines()[0].startswith("Method,CREMAD (WAR)")
    result = CliRunner().invoke(main, ["eval", "table", str(out), "--protocol", "corrected", "--csv", str(tmp_path / "t.csv")])
    assert result.exit_code == 0 and (tmp_path / "t.csv").exists()


def test_clips_adapter_reads_a_users_corpus_in_either_layout(tmp_path, tiny_media, counting):
    # one folder per label, named the way corpora name them (TESS-like speaker prefixes, ASED-like numbers)
    folders = tmp_path / "folders"
    _copy(tiny_media["wav"], folders / "OAF_angry" / "OAF_back_ANG.wav")
    _copy(tiny_media["mp4"], folders / "YAF_pleasant_surprised" / "deeper" / "YAF_back_ps.mp4")
    _copy(tiny_media["wav"], folders / "05Angry" / "a5-01-01-01-02.wav")
    (folders / "OAF_angry" / "notes.txt").write_text("not media: skipped")
    items = load_items("clips", folders, labels="ravdess")
    assert sorted((i.label, i.id.split("/")[-1]) for i in items) == [
        ("angry", "OAF_back_ANG.wav"), ("angry", "a5-01-01-01-02.wav"), ("surprise", "YAF_back_ps.mp4")]
    # or one folder per speaker holding one per label, a split folder below (ESD's layout); a transcript beside
    by_speaker = tmp_path / "by_speaker"
    _copy(tiny_media["wav"], by_speaker / "0011" / "Angry" / "train" / "0011_000351.wav")
    _copy(tiny_media["wav"], by_speaker / "0011" / "Sad" / "evaluation" / "0011_001071.wav")
    _copy(tiny_media["wav"], by_speaker / "0012" / "Surprise" / "test" / "0012_001721.wav")
    (by_speaker / "0011" / "0011.txt").write_text("0011_000351\tThe nine the eggs.\tAngry\n")
    nested = load_items("clips", by_speaker)
    assert sorted((i.speaker, i.label, i.split) for i in nested) == [
        ("0011", "angry", "train"), ("0011", "sad", "dev"), ("0012", "surprise", "test")]
    assert [i.label for i in load_items("clips", by_speaker, "test")] == ["surprise"]
    (by_speaker / "0012" / "outtakes").mkdir()  # a speaker folder with a folder that names no emotion: said
    with pytest.raises(DatasetError, match="0012.*not an emotion"):
        load_items("clips", by_speaker)
    # or, where no folder names an emotion, files whose names do (JL-Corpus, MESD, RaFD)
    flat = tmp_path / "flat"
    _copy(tiny_media["wav"], flat / "female1_angry_1a_1.wav")
    _copy(tiny_media["wav"], flat / "set2" / "Anger_C_A_abajo.wav")
    _copy(tiny_media["wav"], flat / "male2_sad_3b_2.wav")
    assert sorted((i.id, i.label) for i in load_items("clips", flat)) == [
        ("female1_angry_1a_1.wav", "angry"), ("male2_sad_3b_2.wav", "sad"), ("set2/Anger_C_A_abajo.wav", "angry")]
    _copy(tiny_media["wav"], flat / "male2_bored_3b_2.wav")  # one that names no emotion of the set: said
    with pytest.raises(DatasetError, match="male2_bored_3b_2.wav: its name names no one emotion of the dfew"):
        load_items("clips", flat)
    # or a labels.csv with speakers and splits
    table = tmp_path / "table"
    _copy(tiny_media["wav"], table / "x.wav")
    _copy(tiny_media["flv"], table / "sub" / "y.flv")
    (table / "labels.csv").write_text("file,label,speaker,split\nx.wav,Anger,s1,test\nsub/y.flv,sadness,s2,dev\n")
    rows = load_items("clips", table)
    assert [(i.label, i.speaker, i.split) for i in rows] == [("angry", "s1", "test"), ("sad", "s2", "dev")]
    assert [i.id for i in load_items("clips", table, "dev")] == ["sub/y.flv"]
    with pytest.raises(DatasetError, match="no audio, video or image files"):
        (tmp_path / "empty" / "happy").mkdir(parents=True)
        load_items("clips", tmp_path / "empty")
    # scored end to end in the run's label set
    summary = run_eval(EvalConfig(dataset="clips", root=str(folders), out_dir=str(tmp_path / "run"), model="counting",
                                  labels="ravdess"))
    assert summary["items"] == 3 and summary["scores"]["paper"]["n"] == 3
    assert summary["scores"]["paper"]["war"] == pytest.approx(1 / 3)  # the double answers angry only for "ANG"
    # `datasets check` reads the labels in the set the run will use
    _copy(tiny_media["wav"], folders / "calm" / "c.wav")
    assert CliRunner().invoke(main, ["datasets", "check", "clips", str(folders)]).exit_code == 2  # calm: not in dfew
    listed = CliRunner().invoke(main, ["datasets", "check", "clips", str(folders), "--labels", "ravdess"])
    assert listed.exit_code == 0 and "4 items" in listed.output and "calm" in listed.output
    refused = CliRunner().invoke(main, ["datasets", "check", "cremad", str(folders), "--labels", "ravdess"])
    assert refused.exit_code == 2 and "reads its own label set" in refused.output


def test_public_speech_corpora_in_their_release_layouts(tmp_path, tiny_media, counting):
    layouts = {
        "emodb": (["wav/03a01Wa.wav", "wav/08b10La.wav", "wav/16a05Tb.wav", "wav/readme.wav"],
                  ["angry", "bored", "sad"], {"speaker-03", "speaker-08", "speaker-16"}),
        "tess": (["TESS/OAF_angry/OAF_back_angry.wav", "TESS/YAF_pleasant_surprised/YAF_bath_ps.wav",
                  "TESS/OAF_neutral/OA_bite_neutral.wav"], ["angry", "neutral", "surprise"], {"speaker-OAF", "speaker-YAF"}),
        "savee": (["AudioData/DC/a01.wav", "AudioData/JK/sa15.wav", "ALL/KL_su03.wav"], ["angry", "sad", "surprise"],
                  {"speaker-DC", "speaker-JK", "speaker-KL"}),
        "emovo": (["EMOVO/f1/dis-f1-b1.wav", "EMOVO/m3/gio-m3-n5.wav", "EMOVO/m1/pau-m1-l2.wav"],
                  ["disgust", "fear", "happy"], {"actor-f1", "actor-m1", "actor-m3"}),
        "shemo": (["female/F01A01.wav", "male/M12W07.wav", "male/M05N21.wav"], ["angry", "neutral", "surprise"],
                  {"speaker-F01", "speaker-M12", "speaker-M05"}),
        "subesco": (["SUBESCO/F_01_OISHI_S_10_ANGRY_1.wav", "SUBESCO/M_03_TANVIR_S_2_SURPRISE_5.wav"],
                    ["angry", "surprise"], {"speaker-F01", "speaker-M03"}),
    }
    for name, (files, labels, speakers) in layouts.items():
        for file in files:
            _copy(tiny_media["wav"], tmp_path / name / file)
        items = load_items(name, tmp_path / name)  # the default split of a corpus never trained on: all of it
        assert sorted(i.label for i in items) == labels, name
        assert {i.speaker for i in items} == speakers, name
        assert check(name, tmp_path / name).ok
    _copy(tiny_media["wav"], tmp_path / "tess" / "TESS" / "TESS" / "OAF_angry" / "OAF_back_angry.wav")  # a doubled download
    assert len(load_items("tess", tmp_path / "tess")) == 3
    # SAVEE ships each take as audio and as video: --modality picks, and the ids stay apart
    _copy(tiny_media["mp4"], tmp_path / "savee" / "AudioVisualClip" / "DC" / "a01.avi")
    assert len({i.id for i in load_items("savee", tmp_path / "savee")}) == 4
    assert [i.id for i in load_items("savee", tmp_path / "savee", modality="video")] == ["DC_a01.avi"]
    # eNTERFACE'05: emotion and subject from the folders, whatever the file is called
    for file in ("subject 1/anger/sentence 1/s1_an_1.avi", "subject 6/sadness/sentence 3/s6_sa_3.avi",
                 "subject 6/sadness/sentence 3/notes.txt"):
        _copy(tiny_media["mp4"], tmp_path / "enterface" / file)
    _copy(tiny_media["mp4"], tmp_path / "enterface" / "flat" / "s12_su_3.avi")  # the flat copies some sites share
    items = load_items("enterface", tmp_path / "enterface")
    assert [(i.label, i.speaker) for i in items] == [("surprise", "subject-12"), ("angry", "subject-1"), ("sad", "subject-6")]
    # two files under one id would overwrite each other's row in a run: refused, naming both
    _copy(tiny_media["wav"], tmp_path / "dup" / "a" / "x.wav")
    _copy(tiny_media["wav"], tmp_path / "dup" / "b" / "x.wav")
    (tmp_path / "dup" / "manifest.jsonl").write_text('{"path": "a/x.wav", "label": "sad"}\n{"path": "b/x.wav", "label": "sad"}\n')
    with pytest.raises(DatasetError, match="two files under the id 'x'.*a/x.wav and .*b/x.wav"):
        load_items("manifest", tmp_path / "dup")
    # an option that does not apply says so instead of failing inside the reader
    with pytest.raises(DatasetError, match="--channel: emodb has no such option.*ravdess"):
        load_items("emodb", tmp_path / "emodb", channel="speech")
    # scored in the corpus's own label set, and marked as a corpus the pipeline never heard
    summary = run_eval(EvalConfig(dataset="emodb", root=str(tmp_path / "emodb"), out_dir=str(tmp_path / "run"),
                                  model="counting"))
    assert summary["labels"] == "emodb" and summary["items"] == 3 and summary["in_distribution"] is False


def test_eval_suite_runs_every_dataset_it_finds(tmp_path, tiny_media, counting):
    from omniemo.eval.runner import run_suite

    root = tmp_path / "corpora"
    for name in ("03a01Wa", "08b10Na"):
        _copy(tiny_media["wav"], root / "EmoDB" / "wav" / f"{name}.wav")
    _cremad_root(root / "crema", tiny_media)
    (root / "notes").mkdir()  # no dataset: passed over
    (root / "empty-crema" / "AudioWAV").mkdir(parents=True)
    runs = run_suite(root, tmp_path / "runs", EvalConfig(dataset="", root="", out_dir="", model="counting"))
    assert [(r.dataset, Path(r.root).name) for r in runs] == [("emodb", "EmoDB"), ("cremad", "crema")]
    emodb, crema = runs
    assert emodb.summary["split"] == "all" and emodb.summary["labels"] == "emodb" and emodb.summary["items"] == 2
    assert crema.summary["split"] == "test" and crema.summary["items"] == 5  # CREMA-D's own test actors
    table = comparison_table([Path(r.out_dir) for r in runs], paper_rows=False)[0]
    assert "EMODB (UAR) △" in table and "CREMAD (UAR) ⬤" not in table  # counting trained on nothing
    listed = CliRunner().invoke(main, ["datasets", "detect", str(root)])
    assert listed.exit_code == 0 and listed.output.split()[:3] == ["emodb", "2", "items"]
    # the CLI: nothing it knows under a folder is a clear error
    result = CliRunner().invoke(main, ["eval", "suite", str(root / "notes"), "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no dataset layout omniemo knows" in result.output


def _image(path):
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((32, 32), 128, np.uint8))
    return path


def test_public_face_sets_in_their_release_layouts(tmp_path):
    for file in ("jaffe/KA.AN1.39.tiff", "jaffe/YM.SU2.59.tiff", "jaffe/README.tiff"):
        _image(tmp_path / file)
    assert [(i.label, i.speaker) for i in load_items("jaffe", tmp_path / "jaffe")] == [
        ("angry", "poser-KA"), ("surprise", "poser-YM")]
    for file in ("KDEF/AF01/AF01AFS.JPG", "KDEF/AF01/AF01DIHL.JPG", "KDEF/BM35/BM35HAFR.JPG", "KDEF/BM35/bm35nes.jpg"):
        _image(tmp_path / file)
    kdef = load_items("kdef", tmp_path / "KDEF")
    assert sorted((i.label, i.split) for i in kdef) == [("disgust", "half"), ("fear", "frontal"), ("happy", "profile"),
                                                          ("neutral", "frontal")]
    assert sorted(i.label for i in load_items("kdef", tmp_path / "KDEF", "frontal")) == ["fear", "neutral"]
    # CK+: the labelled last frame of a sequence (default), its first frame as neutral (onset)
    ck = tmp_path / "ck"
    for frame in ("00000001", "00000002", "00000011"):
        _image(ck / "cohn-kanade-images" / "S005" / "001" / f"S005_001_{frame}.png")
    _image(ck / "cohn-kanade-images" / "S010" / "002" / "S010_002_00000001.png")  # a sequence with no label
    (ck / "Emotion" / "S005" / "001").mkdir(parents=True)
    (ck / "Emotion" / "S005" / "001" / "S005_001_00000011_emotion.txt").write_text("   3.0000000e+00\n")
    assert [(i.id, i.label) for i in load_items("ckplus", ck)] == [("S005_001_00000011", "disgust")]
    assert [(i.id, i.label) for i in load_items("ckplus", ck, "onset")] == [("S005_001_00000001", "neutral")]
    assert check("ckplus", ck, "all").ok
    (ck / "Emotion" / "S005" / "001" / "S005_001_00000011_emotion.txt").write_text("happy\n")
    with pytest.raises(DatasetError, match="S005_001_00000011_emotion.txt: not a CK\\+ emotion code"):
        load_items("ckplus", ck)


def test_fer2013_and_rafdb_in_their_release_layouts(tmp_path, monkeypatch):
    import cv2

    from omniemo.data.datasets import detect
    from omniemo.eval.runner import _trained_on

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # the challenge file: each face as 2,304 grey values; the pipeline reads files, so they are written once
    fer = tmp_path / "fer"
    fer.mkdir()
    faces = [("3", "Training"), ("1", "PublicTest"), ("5", "PrivateTest"), ("6", "PrivateTest")]
    rows = [f"{code},{' '.join(str((7 * i + j) % 256) for j in range(48 * 48))},{usage}" for i, (code, usage) in enumerate(faces)]
    (fer / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    test = load_items("fer2013", fer)  # the default split: PrivateTest
    assert [(i.label, i.split) for i in test] == [("surprise", "test"), ("neutral", "test")]
    face = cv2.imread(test[0].path, cv2.IMREAD_UNCHANGED)
    assert face.shape == (48, 48) and face[0, 1] == (7 * 2 + 1) % 256
    written = Path(test[0].path).stat().st_mtime_ns
    assert [i.label for i in load_items("fer2013", fer / "fer2013.csv", "publictest")] == ["disgust"]
    assert load_items("fer2013", fer)[0].path == test[0].path and Path(test[0].path).stat().st_mtime_ns == written
    assert len(load_items("fer2013", fer, "all")) == 4
    (fer / "fer2013.csv").write_text("emotion,pixels,Usage\n9,1 2 3,PrivateTest\n")
    with pytest.raises(DatasetError, match="fer2013.csv:2: not a FER2013 row"):
        load_items("fer2013", fer)
    # the image-folder copy: train/ and test/, a folder per emotion
    for file in ("fer-images/train/happy/a.png", "fer-images/test/sad/b.png", "fer-images/test/angry/c.jpg"):
        _image(tmp_path / file)
    assert [(i.id, i.label) for i in load_items("fer2013", tmp_path / "fer-images")] == [
        ("test/angry/c.jpg", "angry"), ("test/sad/b.png", "sad")]
    # RAF-DB basic: the partition list, aligned faces where they are, the original image otherwise
    raf = tmp_path / "basic"
    (raf / "EmoLabel").mkdir(parents=True)
    (raf / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 5\ntest_0001.jpg 1\ntest_0002.jpg 7\n")
    _image(raf / "Image" / "aligned" / "test_0001_aligned.jpg")
    _image(raf / "Image" / "original" / "test_0002.jpg")
    items = load_items("rafdb", raf)
    assert [(i.id, i.label, Path(i.path).parent.name) for i in items] == [("test_0001", "surprise", "aligned"),
                                                                         ("test_0002", "neutral", "original")]
    assert [i.label for i in load_items("rafdb", raf, "train")] == ["sad"]
    # its folder copy names the emotions by code
    _image(tmp_path / "raf-copy" / "test" / "3" / "x.jpg")
    _image(tmp_path / "raf-copy" / "train" / "4" / "y.jpg")
    assert [i.label for i in load_items("rafdb", tmp_path / "raf-copy")] == ["disgust"]
    _image(tmp_path / "raf-copy" / "test" / "9" / "z.jpg")
    with pytest.raises(DatasetError, match="9: not an emotion of RAF-DB"):
        load_items("rafdb", tmp_path / "raf-copy")
    with pytest.raises(DatasetError, match="no EmoLabel/list_patition_label.txt"):
        load_items("rafdb", tmp_path / "fer")
    # a folder of them is found as such, and their test splits count as in distribution for the face model
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, target in (("FER2013", tmp_path / "fer-images"), ("RAF-DB", raf)):
        (suite / name).symlink_to(target)
    assert [(name, folder.name) for name, folder, _ in detect(suite)] == [("fer2013", "FER2013"), ("rafdb", "RAF-DB")]
    assert {"fer2013", "rafdb"} <= set(_trained_on("pipeline"))


def test_eval_cli_on_real_samples(crema_samples, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--dataset", "cremad", "--root", str(crema_samples), "--split", "all",
                                       "--modalities", "audio", "--limit", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["items"] == 3 and summary["in_distribution"] is True
    assert summary["scores"]["paper"]["n"] == 3 and summary["scores"]["format_rate"] == 1.0
    check_result = CliRunner().invoke(main, ["datasets", "check", "cremad", str(crema_samples), "--split", "all"])
    assert check_result.exit_code == 0 and "12 items" in check_result.output


def test_eval_enrols_each_speaker_with_its_own_clips(tmp_path, tiny_media, monkeypatch):
    import omniemo.predictor as predictor_module

    made = []

    class Enrolled:
        name = "enrolled"

        def __init__(self, enroll):
            self.enroll = list(enroll)
            made.append(self)

        def predict(self, path, labels):
            return Prediction(path=str(path), label="neutral", probabilities={"neutral": 1.0},
                              output="<think>x</think>\n<answer>neutral</answer>")

    monkeypatch.setattr(predictor_module, "get_predictor", lambda backend="pipeline", **o: Enrolled(o["enroll"]))
    root = tmp_path / "cremad"
    for name in ("1031_DFA_ANG_XX", "1031_IEO_SAD_XX", "1032_DFA_ANG_XX", "1032_IEO_NEU_XX"):
        _copy(tiny_media["wav"], root / "AudioWAV" / f"{name}.wav")
    run_eval(EvalConfig(dataset="cremad", root=str(root), out_dir=str(tmp_path / "run"), enroll_speakers=True))
    assert len(made) == 2  # one predictor per speaker, each enrolled with exactly that speaker's clips
    assert sorted(sorted(p.rsplit("/", 1)[1][:4] for p in m.enroll) for m in made) == [["1031"] * 2, ["1032"] * 2]
    with pytest.raises(ValueError, match="at least 2 clips per speaker"):
        _copy(tiny_media["wav"], root / "AudioWAV" / "1033_DFA_ANG_XX.wav")
        run_eval(EvalConfig(dataset="cremad", root=str(root), out_dir=str(tmp_path / "run2"), enroll_speakers=True))
    with pytest.raises(ValueError, match="cue-pipeline option"):
        run_eval(EvalConfig(dataset="cremad", root=str(root), out_dir=str(tmp_path / "run3"), model="humanomni",
                            enroll_speakers=True))


def test_eval_cli_enrolled_pipeline_on_real_speech(ravdess_speech, tmp_path):
    root = tmp_path / "ravdess"
    root.mkdir()
    for actor in ("21", "22"):
        for f in sorted(ravdess_speech.glob(f"03-01-0[58]-01-01-01-{actor}.flac")):
            (root / f.name).symlink_to(f)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--dataset", "ravdess", "--root", str(root), "--split", "test",
                                       "--modalities", "audio", "--enroll-speakers", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and not any("error" in r for r in rows)
    assert all(r["prediction"] in r["probabilities"] for r in rows)
    assert json.loads((out / "run.json").read_text())["config"]["enroll_speakers"] is True


def test_eval_and_batch_adapt_to_the_whole_run(tmp_path, tiny_media, monkeypatch):
    import omniemo.eval.batch as batch_module
    import omniemo.eval.runner as runner_module
    import omniemo.predictor as predictor_module
    from omniemo.eval.batch import BatchConfig, run_batch

    seen, profile = [], object()

    def fake_profile(items, modalities=None):
        seen.append(sorted(i.path.rsplit("/", 1)[1] for i in items))
        return {"voice_profile": profile, "face_profile": profile}

    class Adapted:
        def __init__(self, options):
            # made once in the driver, shared by every predictor
            assert options["voice_profile"] is profile and options["face_profile"] is profile
            self.name = "adapted"

        def predict(self, path, labels):
            return Prediction(path=str(path), label="neutral", probabilities={"neutral": 1.0},
                              output="<think>x</think>\n<answer>neutral</answer>")

    monkeypatch.setattr(predictor_module, "get_predictor", lambda backend="pipeline", **o: Adapted(o))
    monkeypatch.setattr(runner_module, "corpus_profiles", fake_profile)
    monkeypatch.setattr(batch_module, "corpus_profiles", fake_profile)
    root = tmp_path / "cremad"
    names = ("1031_DFA_ANG_XX", "1031_IEO_SAD_XX", "1032_DFA_ANG_XX")
    for name in names:
        _copy(tiny_media["wav"], root / "AudioWAV" / f"{name}.wav")
    run_eval(EvalConfig(dataset="cremad", root=str(root), out_dir=str(tmp_path / "run"), adapt_corpus=True))
    run_batch(BatchConfig(out_dir=str(tmp_path / "batch"), clips=[str(root)], adapt_corpus=True))
    assert seen == [[f"{n}.wav" for n in names]] * 2  # the whole run is the recording set, labels unread
    with pytest.raises(ValueError, match="not both"):
        run_eval(EvalConfig(dataset="cremad", root=str(root), out_dir=str(tmp_path / "r2"), adapt_corpus=True,
                            enroll_speakers=True))
    with pytest.raises(ValueError, match="cue-pipeline option"):
        run_batch(BatchConfig(out_dir=str(tmp_path / "b2"), clips=[str(root)], model="humanomni", adapt_corpus=True))
