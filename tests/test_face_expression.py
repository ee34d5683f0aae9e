"""Our facial-expression model: the recipe, the aligned crops, calibration, smoothing, the images benchmark."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from omniemo.cli import main
from omniemo.perception.expression import (
    CANONICAL_EYES,
    CLASSES,
    EXPERT_INPUT_SIZE,
    ExpressionModel,
    align,
    shipped_config,
)
from omniemo.perception.face import smooth_expressions


def test_align_puts_the_eyes_where_the_model_expects_them():
    grey = np.zeros((200, 300), np.uint8)
    right, left = np.array([100.0, 90.0]), np.array([180.0, 110.0])  # a tilted face
    for (x, y) in (right, left):
        grey[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3] = 255
    crop = align(grey, right, left, size=48)
    ys, xs = np.nonzero(crop > 100)
    found = sorted(zip(xs, ys))
    expected = np.array(CANONICAL_EYES) * 48
    assert abs(found[0][0] - expected[0][0]) < 3 and abs(found[-1][0] - expected[1][0]) < 3
    assert all(abs(y - expected[0][1]) < 3 for _, y in found)  # level after rotation


def test_shipped_model_is_calibrated_and_sums_to_one():
    config = shipped_config()
    assert config["classes"] == list(CLASSES) and 0.2 < config["temperature"] < 5
    model = ExpressionModel()
    p = model(np.full((48, 48), 128, np.uint8))
    assert p.shape == (7,) and p.sum() == pytest.approx(1.0)
    card = (model_dir() / "FACE_MODEL_CARD.md").read_text()
    for needle in ("FER2013 public test", "RAF-DB", "facex", "mini-Xception", "research use"):
        assert needle in card
    scores = json.loads((model_dir() / "face_expression_scores.json").read_text())
    for name, c in scores["calibration"].items():
        assert c["nll_after"] <= c["nll_before"] + 1e-9, name


def model_dir():
    from importlib import resources

    return resources.files("omniemo.perception").joinpath("weights")


def test_one_blurred_frame_does_not_flip_the_reading():
    times = np.arange(10) * 0.2
    probs = np.tile(np.array([0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.1]), (10, 1))
    probs[5] = [0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]  # one frame reads angry
    probs[7] = np.nan  # no face in this frame: skipped, not neutral
    smoothed = smooth_expressions(times, probs)
    assert np.all(np.nanargmax(np.where(np.isnan(smoothed), -1, smoothed), axis=1)[np.isfinite(smoothed[:, 0])] == 3)
    assert np.isnan(smoothed[7]).all()


def _synthetic_faces(root, seed=0, shade=90):
    """A face set: a bright mouth bar up (happy) or down (sad) on a grey oval; no landmarks are found, so the
    recipe's fallback (the image itself) is what gets trained on. 36 train + 12 publictest images."""
    import cv2

    rng = np.random.default_rng(seed)
    rows = ["file,split,label"]
    for i in range(48):
        label = "happy" if i % 2 else "sad"
        image = np.full((48, 48, 3), shade, np.uint8)
        cv2.ellipse(image, (24, 24), (16, 20), 0, 0, 360, (170, 170, 170), -1)
        y = 30 if label == "happy" else 36
        cv2.line(image, (16, y), (32, 66 - y), (250, 250, 250), 2)
        image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        split = "publictest" if i >= 36 else "train"
        name = f"{split}/{label}/{i}.png"
        (root / split / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), image)
        rows.append(f"{name},{split},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_training_recipe_on_a_tiny_set_is_deterministic(tmp_path):
    from omniemo.train.face_expression import FaceExpressionConfig, refit, train

    root = _synthetic_faces(tmp_path / "faces")
    runs = []
    for run in ("a", "b"):
        config = FaceExpressionConfig(fer2013_root=root, out_dir=tmp_path / run, cache=tmp_path / "crops.npz", epochs=2,
                                      batch_size=16, width=8, workers=1, threads=1)
        report = train(config)
        runs.append((tmp_path / run / "face_expression.onnx").read_bytes())
        assert report["validation"]["fer2013"]["ours"]["n"] == 12
        assert {tuple(sorted(g["weights"].items())) for g in report["expert_grid"]} >= {(("faceapi", 0.0), ("facex", 0.0), ("fer", 0.0))}
        assert len(report["expert_grid"]) > 10
        # with and without the mirrored copy, both scored; the choice is what ships
        assert set(report["test_time_flip_choice"]) == {"with", "without"}
        shipped = json.loads((tmp_path / run / "face_expression.json").read_text())
        assert shipped["test_time_flip"] == report["test_time_flip"]
    assert runs[0] == runs[1]
    # the wheel models were scored on crops made at their own size, cached beside ours
    with np.load(tmp_path / f"crops.{EXPERT_INPUT_SIZE}.npz") as wide:
        assert wide["crops"].shape == (12, EXPERT_INPUT_SIZE, EXPERT_INPUT_SIZE)
    # refit: the same net, its calibration and product chosen again, the training record kept
    before = json.loads((tmp_path / "a" / "face_expression_scores.json").read_text())
    again = refit(FaceExpressionConfig(fer2013_root=root, out_dir=tmp_path / "a", cache=tmp_path / "crops.npz", workers=1))
    assert again["nets"][0]["history"] == before["nets"][0]["history"] and again["experts"] == before["experts"]
    assert abs(again["temperature"] - before["temperature"]) < 1e-6
    assert (tmp_path / "a" / "face_expression.onnx").read_bytes() == runs[0]
    model = ExpressionModel(tmp_path / "a" / "face_expression.onnx", json.loads((tmp_path / "a" / "face_expression.json").read_text()))
    assert model(np.full((48, 48), 100, np.uint8)).shape == (7,)
    # the nets' statistics over the validation faces ship beside them, for --adapt to re-standardise them on a set
    assert shipped["conv_statistics"] == "face_expression_conv_statistics.npz"
    adapted = ExpressionModel.from_dir(tmp_path / "a").restandardised(_smooth_crops(12, 1))
    assert adapted(np.full((48, 48), 100, np.uint8)).shape == (7,) and adapted.sessions != model.sessions
    with pytest.raises(ValueError, match="names no convolution statistics"):  # a model made before them
        ExpressionModel(tmp_path / "a" / "face_expression.onnx", {"temperature": 1.0}).restandardised(_smooth_crops(12, 1))
    with pytest.raises(ValueError, match="no convolution statistics of 'rafdb'"):  # trained on FER2013 alone
        ExpressionModel.from_dir(tmp_path / "a").restandardised(_smooth_crops(12, 1), "rafdb")
    assert (tmp_path / "a" / "FACE_MODEL_CARD.md").exists()


def test_an_ensemble_of_seeds_is_trained_or_assembled_and_averaged(tmp_path):
    from omniemo.perception.expression import ExpressionModel
    from omniemo.train.face_expression import FaceExpressionConfig, refit, train

    root = _synthetic_faces(tmp_path / "faces")
    small = {"fer2013_root": root, "cache": tmp_path / "crops.npz", "epochs": 1, "batch_size": 16, "width": 8,
             "workers": 1, "threads": 1}
    both = train(FaceExpressionConfig(out_dir=tmp_path / "both", seed=3, nets=2, **small))
    assert [n["seed"] for n in both["nets"]] == [3, 4]
    shipped = json.loads((tmp_path / "both" / "face_expression.json").read_text())
    assert shipped["networks"] == ["face_expression.onnx", "face_expression.1.onnx"]
    crops = np.random.default_rng(0).integers(0, 255, (3, 48, 48)).astype(np.uint8)
    pair = ExpressionModel([tmp_path / "both" / f for f in shipped["networks"]], {"temperature": 1.0})
    alone = [ExpressionModel(tmp_path / "both" / f, {"temperature": 1.0}).logits(crops) for f in shipped["networks"]]
    assert np.allclose(pair.logits(crops), (alone[0] + alone[1]) / 2)
    # the test-time mirrored copy: the mean over each crop and its mirror, so a face and its mirror read the same
    mirrored = ExpressionModel([tmp_path / "both" / f for f in shipped["networks"]], {"temperature": 1.0, "test_time_flip": True})
    flipped = crops[:, :, ::-1].copy()
    assert np.allclose(mirrored.logits(crops), (pair.logits(crops) + pair.logits(flipped)) / 2)
    assert np.allclose(mirrored.logits(crops), mirrored.logits(flipped))
    assert not np.allclose(pair.logits(crops), pair.logits(flipped))
    # one net per run, assembled afterwards: the same two networks, the same model
    train(FaceExpressionConfig(out_dir=tmp_path / "s3", seed=3, **small))
    train(FaceExpressionConfig(out_dir=tmp_path / "s4", seed=4, **small))
    assembled = refit(FaceExpressionConfig(out_dir=tmp_path / "s3", with_nets=[tmp_path / "s4" / "face_expression.onnx"], **small))
    assert [n["seed"] for n in assembled["nets"]] == [3, 4]
    assert (tmp_path / "s3" / "face_expression.1.onnx").read_bytes() == (tmp_path / "both" / "face_expression.1.onnx").read_bytes()
    assert json.loads((tmp_path / "s3" / "face_expression.json").read_text())["networks"] == shipped["networks"]


def _image(path, value=128):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((64, 64, 3), value, np.uint8))
    return path


def test_images_adapter_reads_both_layouts(tmp_path):
    from omniemo.data.datasets import DatasetError, load_items

    for label in ("happy", "sad"):
        _image(tmp_path / "folders" / label / f"{label}1.png")
    items = load_items("images", tmp_path / "folders")
    assert sorted(i.label for i in items) == ["happy", "sad"]
    csv_root = tmp_path / "table"
    _image(csv_root / "a.jpg")
    _image(csv_root / "b.jpg")
    (csv_root / "labels.csv").write_text("file,label,split\na.jpg,Anger,test\nb.jpg,surprised,val\n")
    assert [(i.label, i.split) for i in load_items("images", csv_root)] == [("angry", "test"), ("surprise", "val")]
    assert len(load_items("images", csv_root, "test")) == 1
    (csv_root / "labels.csv").write_text("file,label\na.jpg,banana\n")
    with pytest.raises(DatasetError, match="labels.csv:2.*--labels names another set"):
        load_items("images", csv_root)
    # a set with an emotion the default vocabulary lacks is read with a comma list that names it
    _image(tmp_path / "posed" / "contempt" / "c.png")
    _image(tmp_path / "posed" / "happy" / "h.png")
    with pytest.raises(DatasetError, match="contempt: the folder name is not an emotion of the dfew"):
        load_items("images", tmp_path / "posed")
    assert sorted(i.label for i in load_items("images", tmp_path / "posed", labels="happy,contempt")) == ["contempt", "happy"]


def test_eval_on_face_images_says_how_each_was_cropped(tmp_path):
    import cv2
    from PIL import Image

    from omniemo.media.synth import demo_face

    root = tmp_path / "faces"
    _image(root / "neutral" / "blank.png", 128)
    # a tight face crop (the detector misses it: it is read whole) in the formats face sets ship in: grey TIFF,
    # 16-bit PNG, a CMYK JPEG, an upper-case suffix
    grey = cv2.cvtColor(cv2.resize(demo_face()[:260, 100:360], (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(root / "neutral" / "grey.tiff"), grey)
    cv2.imwrite(str(root / "neutral" / "deep.png"), grey.astype(np.uint16) * 257)
    Image.fromarray(grey).convert("CMYK").save(root / "neutral" / "print.jpg")
    Image.fromarray(grey).save(root / "neutral" / "CAMERA.JPG")
    result = CliRunner().invoke(main, ["eval", "--dataset", "images", "--root", str(root), "--modalities", "face",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in map(json.loads, (tmp_path / "run" / "predictions.jsonl").read_text().splitlines())}
    assert len(rows) == 5 and not any(row.get("error") for row in rows.values())
    for name, row in rows.items():
        notes = " ".join(row["notes"])
        assert row["prediction"] in CLASSES and "duration" not in notes  # a photograph has no duration to miss
        if name == "blank.png":  # a grey square is no face, read whole or not: the face is missing, the answer a guess
            assert "nor in it read whole" in notes and "face" in row["missing_modalities"]
        else:
            assert "the whole image was read as the face" in notes and "face" in row["modalities"]


def test_a_wheel_models_near_zero_cannot_veto_a_class():
    from omniemo.perception.expression import CLASSES, product_of_experts

    ours = np.log(np.full(7, 0.05))
    ours[CLASSES.index("disgust")] = np.log(0.7)
    ours -= np.log(np.exp(ours).sum())
    fer = np.full(7, (1 - 1e-4) / 6)
    fer[CLASSES.index("disgust")] = 1e-4  # what mini-Xception says on nearly every face
    vetoed = product_of_experts(ours, {"fer": fer}, {"fer": 1.0}, floor=0.0)
    floored = product_of_experts(ours, {"fer": fer}, {"fer": 1.0}, floor=0.2)
    assert CLASSES[int(np.argmax(vetoed))] != "disgust"
    assert CLASSES[int(np.argmax(floored))] == "disgust"
    assert np.isclose(np.exp(floored).sum(), 1.0)
    # weight 0 leaves ours unchanged
    assert np.allclose(product_of_experts(ours, {"fer": fer}, {"fer": 0.0}, floor=0.2), ours)


def test_ties_at_home_go_to_the_product_that_holds_up_on_faces_never_seen():
    """Products equal on the validation faces are told apart by nets trained on one set alone, read on the other;
    a wheel model is left out on the set it was trained on (the mini-Xception on FER2013), where it would look
    better than it is elsewhere."""
    from omniemo.train.face_expression import choose_experts

    k, n = len(CLASSES), 70
    truth = np.arange(n) % k
    one_hot = np.eye(k)[truth]
    uniform = np.full((n, k), 1 / k)
    strong = np.log(0.9 * one_hot + 0.1 / (k - 1) * (1 - one_hot))  # ours at home: every product ties at 100
    wrong = np.roll(one_hot, 1, axis=1)
    weak = np.log(0.3 * wrong + 0.7 / (k - 1) * (1 - wrong))  # a one-set net, mildly wrong on the other set
    sure = 0.8 * one_hot + 0.2 / (k - 1) * (1 - one_hot)
    home = {s: strong for s in ("fer2013", "rafdb")}
    experts = {"fer": {"fer2013": sure, "rafdb": uniform}, "facex": {"fer2013": uniform, "rafdb": sure},
               "faceapi": {"fer2013": uniform, "rafdb": uniform}}  # says nothing: its weight never helps
    truths = {s: truth for s in home}
    unseen = [{"trained_on": "fer2013", "read": "rafdb", "logp": weak, "truth": truth},
              {"trained_on": "rafdb", "read": "fer2013", "logp": weak, "truth": truth}]

    alone, _ = choose_experts(home, experts, truths)
    assert alone["floor"] == 0.5 and sum(alone["weights"].values()) == 0.25  # the safest of the ties
    choice, grid = choose_experts(home, experts, truths, unseen)
    # facex lifts the one-set net on RAF-DB only from weight 0.5 at a floor below 0.5; the mini-Xception's help on
    # FER2013, its own set, does not count
    assert choice["weights"] == {"faceapi": 0.0, "facex": 0.5, "fer": 0.0} and choice["floor"] == 0.35
    assert choice["mean_uar"] == 100.0 and choice["unseen_uar"] == 50.0
    assert choice["unseen_by_run"] == {"fer2013 -> rafdb": 100.0, "rafdb -> fer2013": 0.0}
    assert choice["at_home_only"]["weights"] == alone["weights"] and choice["at_home_only"]["unseen_uar"] < 50.0
    assert all(g["unseen_uar"] is not None for g in grid)


def test_facex_reads_a_steady_face_every_other_frame_and_a_moved_face_anew():
    from omniemo.media.synth import demo_face
    from omniemo.perception.face import FaceAnalyzer

    portrait = np.ascontiguousarray(demo_face()[:, :, :3])
    analyzer = FaceAnalyzer()
    facex = analyzer.expression.experts["facex"]
    calls = []
    analyzer.expression.experts["facex"] = lambda crop: calls.append(crop.shape) or facex(crop)
    try:
        steady = [analyzer(portrait) for _ in range(3)]
        assert all(len(found) == 1 for found in steady) and len(calls) == 2  # frames 1 and 3 read it, 2 reuses it
        # the wheel model reads the face at its own input size, not our 48-pixel crop blown up
        assert set(calls) == {(EXPERT_INPUT_SIZE, EXPERT_INPUT_SIZE)}
        np.testing.assert_allclose(steady[0][0].expression, steady[1][0].expression, atol=1e-6)  # same face, same reading
        moved = np.ascontiguousarray(np.roll(portrait, portrait.shape[1] // 2, axis=1))  # the face elsewhere
        assert len(analyzer(moved)) == 1 and len(calls) == 3  # frame 3's reading was fresh, but not of this face
    finally:
        analyzer.close()


def test_unseen_face_sets_soften_the_shipped_probabilities(tmp_path):
    """Nets trained on one set alone are read on the other (leave one face set out); the ratio of the temperatures
    fitted there scales the product's own temperature, which the model applies to what the pipeline reads."""
    import shutil

    from omniemo.perception.expression import log_softmax, product_of_experts
    from omniemo.train.face_expression import FaceExpressionConfig, refit, train

    fer = _synthetic_faces(tmp_path / "fer")
    raf = _synthetic_faces(tmp_path / "raf", seed=1, shade=60)  # another "set": darker, other noise
    shutil.copy(raf / "labels.csv", raf / "all.csv")
    (raf / "labels.csv").write_text((raf / "all.csv").read_text().replace(",publictest,", ",train,"))
    small = {"cache": tmp_path / "crops.npz", "epochs": 1, "batch_size": 16, "width": 8, "workers": 1, "threads": 1}
    train(FaceExpressionConfig(fer2013_root=fer, out_dir=tmp_path / "fer-only", **small))
    train(FaceExpressionConfig(rafdb_root=raf, out_dir=tmp_path / "raf-only", seed=1, **small))
    config = FaceExpressionConfig(fer2013_root=fer, rafdb_root=raf, out_dir=tmp_path / "both",
                                  held_out_runs=[tmp_path / "fer-only", tmp_path / "raf-only"], **small)
    report = train(config)
    runs = report["held_out"]["runs"]
    assert {(r["trained_on"], r["read"]) for r in runs} == {("fer2013", "rafdb"), ("rafdb", "fer2013")}
    ratio = float(np.exp(np.mean([np.log(r["temperature_unseen"] / r["temperature_own"]) for r in runs])))
    t = report["product_temperature"]
    assert t["held_out_ratio"] == pytest.approx(ratio) and t["shipped"] == pytest.approx(t["fitted"] * ratio)
    shipped = json.loads((tmp_path / "both" / "face_expression.json").read_text())
    assert shipped["product_temperature"] == pytest.approx(t["shipped"])
    card = (tmp_path / "both" / "FACE_MODEL_CARD.md").read_text()
    assert "## Faces of a set it never trained on" in card and f"{t['shipped']:.2f} shipped" in card
    assert "read the other set through it" in card  # how the product was chosen for faces never seen
    # the model applies it: the product's log-probabilities divided by it, the answer unchanged
    model = ExpressionModel(tmp_path / "both" / "face_expression.onnx", shipped)
    crop = np.random.default_rng(2).integers(0, 255, (48, 48)).astype(np.uint8)
    readings = model.expert_readings(crop)
    logp = product_of_experts(log_softmax(model.logits(crop[None])[0] / model.temperature), readings, model.weights, model.floor)
    expected = np.exp(log_softmax(logp / t["shipped"]))
    assert np.allclose(model(crop, readings), expected) and np.argmax(expected) == np.argmax(logp)
    # refit keeps the measurement when given the runs again; a run trained on both sets is refused
    again = refit(FaceExpressionConfig(fer2013_root=fer, rafdb_root=raf, out_dir=tmp_path / "both",
                                       held_out_runs=[tmp_path / "fer-only", tmp_path / "raf-only"], **small))
    assert again["product_temperature"]["shipped"] == pytest.approx(t["shipped"])
    with pytest.raises(ValueError, match="not on one face set alone"):
        refit(FaceExpressionConfig(fer2013_root=fer, rafdb_root=raf, out_dir=tmp_path / "both",
                                   held_out_runs=[tmp_path / "both"], **small))


def test_limit_takes_a_seeded_sample_of_every_class(tmp_path):
    """--limit on a labels.csv sorted by label (as FER2013's is) still sees every class, the same faces each time."""
    from omniemo.train.face_expression import FaceExpressionConfig, face_images

    root = tmp_path / "sorted"
    root.mkdir()
    rows = [f"train/{label}/{i}.png,train,{label}" for label in ("angry", "happy", "sad") for i in range(20)]
    (root / "labels.csv").write_text("file,split,label\n" + "\n".join(rows) + "\n")
    config = FaceExpressionConfig(fer2013_root=root, limit=12)
    picked = face_images(config)
    assert len(picked) == 12 and {r["label"] for r in picked} == {"angry", "happy", "sad"}
    assert picked == face_images(config)
    assert [r["path"] for r in picked] == sorted((r["path"] for r in picked), key=[str(root / x.split(",")[0]) for x in rows].index)


def test_recipe_crops_a_face_by_its_eyes_and_anything_else_whole(tmp_path):
    """The recipe frames each image as the pipeline would read it: Face Mesh on the upscaled, border-extended image,
    the crop aligned by the eye centres; an image without a face is taken whole."""
    import cv2

    from omniemo.media.synth import demo_face
    from omniemo.perception.expression import eye_centres
    from omniemo.train.face_expression import _crop_worker, framed_landmarks

    portrait = cv2.resize(demo_face()[:260, 100:360], (100, 100), interpolation=cv2.INTER_AREA)  # a tight face crop
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    framed, points = framed_landmarks(str(face))
    assert points is not None and points.shape == (468, 3)
    right, left = eye_centres(points)
    assert right[0] < left[0] and abs(right[1] - left[1]) < 0.1 * (left[0] - right[0])  # subject's right eye on the left
    _, crop, aligned = _crop_worker((str(face), 48))
    assert aligned and crop.shape == (48, 48)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((60, 60, 3), 90, np.uint8))
    assert framed_landmarks(str(blank))[1] is None
    _, crop, aligned = _crop_worker((str(blank), 48))
    assert not aligned and crop.shape == (48, 48) and np.all(crop == 90)


def test_a_grainy_face_is_denoised_before_it_is_read_and_a_clean_one_is_left_alone():
    """Sensor grain costs the nets up to 20 UAR points (bench_face_conditions.py): a crop whose measured noise is
    above the threshold is read after non-local means, its wide crop corrected the same way; a clean crop is
    returned untouched. In a clip, the face's summary counts the frames read that way."""
    import cv2

    from omniemo.media.synth import demo_face
    from omniemo.perception.expression import NOISE_THRESHOLD, denoised, noise_level
    from omniemo.perception.face import FaceAnalyzer, face_report

    grey = cv2.cvtColor(demo_face()[30:250, 130:350], cv2.COLOR_RGB2GRAY)  # the astronaut's face
    crop = cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)
    wide = cv2.resize(grey, (200, 200), interpolation=cv2.INTER_AREA)
    assert noise_level(crop) < NOISE_THRESHOLD
    same_crop, same_wide, _ = denoised(crop, wide)
    assert same_crop is crop and same_wide is wide

    grain = np.random.default_rng(0).normal(0, 20, (48, 48))
    noisy = np.clip(crop + grain, 0, 255).astype(np.uint8)
    noisy_wide = np.clip(wide + cv2.resize(grain, (200, 200), interpolation=cv2.INTER_NEAREST), 0, 255).astype(np.uint8)
    level = noise_level(noisy)
    assert 12 < level < 25  # about the grain's sd, however textured the face
    clean, clean_wide, measured = denoised(noisy, noisy_wide)
    assert measured == level and noise_level(clean) < 0.5 * level

    def error(a, b):
        return float(np.mean((a.astype(float) - b) ** 2))

    assert error(clean, crop) < 0.5 * error(noisy, crop) and error(clean_wide, wide) < error(noisy_wide, wide)

    # a small, grainy face in a frame, through the face branch
    frame = cv2.resize(demo_face(), (192, 192), interpolation=cv2.INTER_AREA).astype(float)
    frame = np.clip(frame + np.random.default_rng(1).normal(0, 25, frame.shape[:2])[..., None], 0, 255).astype(np.uint8)
    analyzer = FaceAnalyzer()
    try:
        found = analyzer(frame)
    finally:
        analyzer.close()
    assert found and found[0].noise > NOISE_THRESHOLD
    report, _, _ = face_report(np.array([0.0]), [found], (192, 192), 0.2)
    assert report.summary["denoised_frames"] == 1


def test_a_blurred_face_is_read_by_our_nets_alone_and_a_sharp_one_by_the_product(tmp_path):
    """On a blurred or small face the outside models read near chance (bench_face_conditions.py): their say falls
    with the crop's sharpness, to nothing on a face out of focus, where they are not even run; a sharp face keeps
    the product unchanged. In a clip, the face's summary counts the frames read with less of their say."""
    import cv2

    from omniemo.media.synth import demo_face
    from omniemo.perception.expression import (SHARPNESS_FULL, SHARPNESS_NONE, ExpressionModel, log_softmax,
                                              outside_say, product_of_experts, sharpness)
    from omniemo.perception.face import FaceAnalyzer, FaceObservation, face_report

    grey = cv2.cvtColor(demo_face()[30:250, 130:350], cv2.COLOR_RGB2GRAY)
    crop = cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(crop, (0, 0), sigmaX=5.0)
    small = cv2.resize(cv2.resize(crop, (14, 14), interpolation=cv2.INTER_AREA), (48, 48), interpolation=cv2.INTER_LINEAR)
    assert sharpness(crop) > SHARPNESS_FULL and outside_say(sharpness(crop)) == 1.0
    assert sharpness(blurred) < SHARPNESS_NONE and outside_say(sharpness(blurred)) == 0.0
    assert sharpness(small) < SHARPNESS_FULL and outside_say(sharpness(small)) < 1.0
    # light and contrast count little: the same face at a third of its contrast is as sharp
    flat = np.clip(crop.mean() + (crop - crop.mean()) / 3, 0, 255).astype(np.uint8)
    assert abs(sharpness(flat) - sharpness(crop)) < 0.25 * sharpness(crop)

    model = ExpressionModel()
    confident = {name: np.eye(7)[0] for name in model.experts}  # every outside model sure of "angry"
    nets_alone = np.exp(log_softmax(model.logits(blurred[None])[0] / model.temperature) / model.product_temperature)
    np.testing.assert_allclose(model(blurred, confident), nets_alone / nets_alone.sum(), atol=1e-9)
    logp = log_softmax(model.logits(crop[None])[0] / model.temperature)
    product = product_of_experts(logp, confident, model.weights, model.floor)
    np.testing.assert_allclose(model(crop, confident), np.exp(log_softmax(product / model.product_temperature)), atol=1e-9)
    # per face of a batch: a say of 0 leaves ours, 1 is the full product
    both = product_of_experts(np.stack([logp, logp]), {n: np.stack([p, p]) for n, p in confident.items()},
                              model.weights, model.floor, np.array([0.0, 1.0]))
    np.testing.assert_allclose(both, [log_softmax(logp), product], atol=1e-9)

    # through the face branch: a face out of focus in a frame keeps little of their say; where it would keep none,
    # the outside models are not run
    frame = cv2.GaussianBlur(np.ascontiguousarray(demo_face()[:, :, :3]), (0, 0), sigmaX=6.0)
    analyzer = FaceAnalyzer()
    calls = []
    for name, expert in list(analyzer.expression.experts.items()):
        analyzer.expression.experts[name] = lambda c, expert=expert: calls.append(c.shape) or expert(c)
    try:
        found = analyzer(frame)
        assert found and outside_say(found[0].sharpness) < 0.5 and calls
        report, _, _ = face_report(np.array([0.0]), [found], frame.shape[1::-1], 0.2)
        assert report.summary["blurred_frames"] == 1
        calls.clear()
        analyzer.new_clip()
        out_of_focus = FaceObservation(box=np.array([0, 0, 220, 220]), score=1.0)
        read = analyzer.read_expression(cv2.resize(blurred, (200, 200)), out_of_focus)
        assert out_of_focus.sharpness < SHARPNESS_NONE and not calls
        np.testing.assert_allclose(read, nets_alone / nets_alone.sum(), atol=0.02)
    finally:
        analyzer.close()
    # and the reasoning says so, so that a user can weigh the face's reading
    photo = tmp_path / "blurred.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = CliRunner().invoke(main, ["analyze", str(photo), "--json"])
    assert result.exit_code == 0, result.output
    reasoning = json.loads(result.stdout)["reasoning"][0]["text"]
    assert reasoning.startswith("The face reads mostly as") and "the face was blurred or small in the image" in reasoning


def test_a_shipped_net_is_rebuilt_in_torch_and_trained_further_from_where_it_was(tmp_path):
    import torch

    from omniemo.perception.expression import network_files
    from omniemo.train.face_expression import FaceExpressionConfig, net_from_onnx, train

    # the shipped nets, their BatchNorm folded at export, read the same in torch as in onnxruntime
    weights = model_dir()
    crops = np.random.default_rng(1).integers(0, 255, (4, 48, 48)).astype(np.uint8)
    for name in network_files(shipped_config()):
        net = net_from_onnx(weights.joinpath(name)).eval()
        with torch.no_grad():
            rebuilt = net(torch.from_numpy(crops).float().div(255).unsqueeze(1)).numpy()
        assert np.allclose(rebuilt, ExpressionModel(weights.joinpath(name), {"temperature": 1.0}).logits(crops), atol=1e-4)
    # a run trained further from a model starts from its nets: at a learning rate of 0 they come out as they went in
    # (BatchNorm held in eval mode; batch statistics would have undone the folding)
    root = _synthetic_faces(tmp_path / "faces")
    small = {"fer2013_root": root, "cache": tmp_path / "crops.npz", "batch_size": 16, "width": 8, "workers": 1, "threads": 1}
    train(FaceExpressionConfig(out_dir=tmp_path / "first", seed=3, nets=2, epochs=1, **small))
    again = train(FaceExpressionConfig(out_dir=tmp_path / "further", init_from=tmp_path / "first", epochs=1, lr=0.0,
                                       degrade=True, **small))
    assert [n["trained_further_from"].split("/")[-1] for n in again["nets"]] == ["face_expression.onnx", "face_expression.1.onnx"]
    assert all(n["degraded_pictures"] for n in again["nets"])
    assert [n["first_trained"]["seed"] for n in again["nets"]] == [3, 4]  # how each was made before, kept
    for name in ("face_expression.onnx", "face_expression.1.onnx"):
        before = ExpressionModel(tmp_path / "first" / name, {"temperature": 1.0}).logits(crops)
        assert np.allclose(ExpressionModel(tmp_path / "further" / name, {"temperature": 1.0}).logits(crops), before, atol=1e-4)
    assert "trained further from face_expression.1.onnx" in (tmp_path / "further" / "FACE_MODEL_CARD.md").read_text()
    # the run's whole model, as a benchmark reads it: both nets, averaged
    model = ExpressionModel.from_dir(tmp_path / "further")
    assert len(model.sessions) == 2 and model(crops[0]).sum() == pytest.approx(1.0)


def test_degraded_pictures_are_made_small_and_blurred_only_when_asked():
    import torch

    from omniemo.train.face_expression import augmenter

    names = [type(m).__name__ for m in augmenter()]
    assert "RandomLowResolution" not in names
    low = next(m for m in augmenter(degrade=True) if type(m).__name__ == "RandomLowResolution")
    low.p = 1.0
    faces = torch.rand(8, 1, 48, 48)
    made = low(faces)
    assert made.shape == faces.shape
    # the detail above what at most 40 pixels hold is gone: neighbouring pixels differ far less than in noise
    def roughness(x):
        return (x[..., 1:] - x[..., :-1]).abs().mean()

    assert roughness(made) < 0.7 * roughness(faces)
    low.p = 0.0
    assert torch.equal(low(faces), faces)


def test_facex_rebuilt_as_a_float_graph_answers_as_its_tflite_file():
    import cv2
    from conftest import shared_dir

    from omniemo.perception.expression import Facex
    from omniemo.perception.models import model_file, tflite_interpreter

    faces = sorted((shared_dir("fer2013") / "publictest").glob("*/*.jpg"))[::150][:24]
    rebuilt = Facex()
    original = tflite_interpreter(model_file(Facex.package, Facex.path, Facex.package))
    x_in, y_out = original.get_input_details()[0]["index"], original.get_output_details()[0]["index"]
    agree = []
    for path in faces:
        x = rebuilt.prepare(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        original.set_tensor(x_in, x)
        original.invoke()
        expected, got = original.get_tensor(y_out)[0], rebuilt.run(x)[0]
        # TFLite's hybrid kernels also quantise the activations: close, not equal
        assert np.abs(expected - got).max() < 0.2 and np.isclose(got.sum(), 1.0, atol=1e-4)
        agree.append(expected.argmax() == got.argmax())
    assert len(faces) == 24 and np.mean(agree) >= 0.9


def test_float_rebuild_refuses_an_operator_it_does_not_know(tmp_path):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from omniemo.perception.tflite_float import float_onnx

    def tensor(name):
        t = schema.TensorT()
        t.shape, t.buffer, t.name = [1, 4], 0, name
        return t

    # a one-operator TFLite file (tanh, which the rebuild does not cover), written with the schema's own builder
    code, op, graph, model = schema.OperatorCodeT(), schema.OperatorT(), schema.SubGraphT(), schema.ModelT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TANH
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [tensor("x"), tensor("y")], [0], [1], [op]
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "tanh.tflite"
    path.write_bytes(builder.Output())
    with pytest.raises(ValueError, match="TANH"):
        float_onnx(path)


def test_a_set_is_read_against_its_own_mean_expression():
    from omniemo.perception.expression import face_profile
    from omniemo.perception.face import FaceObservation, face_report

    leaning_angry = np.log([0.4, 0.05, 0.1, 0.15, 0.1, 0.1, 0.1])  # what a camera or a population may do to a set
    with pytest.raises(ValueError, match="at least 10 files with a face"):
        face_profile([leaning_angry] * 9)
    profile = face_profile([leaning_angry] * 12)
    assert profile.files == 12 and np.isclose(profile.offset.sum(), 0)
    reading = np.array([0.35, 0.05, 0.1, 0.2, 0.1, 0.1, 0.1])  # angry to the model; happier than the set's average
    adapted = profile.apply(reading)
    assert np.isclose(adapted.sum(), 1) and CLASSES[int(np.argmax(adapted))] == "happy"
    # the report: cues and series carry the adapted reading, the summary the model's own (what profiles are made of)
    frames = [[FaceObservation(box=np.array([0.0, 0.0, 40.0, 40.0]), score=0.9, expression=reading)] for _ in range(3)]
    report, cues, _ = face_report(np.arange(3) * 0.2, frames, (64, 64), 0.2, profile=profile)
    assert np.allclose(report.summary["expression_log_mean"], np.log(reading), atol=1e-3)
    assert report.summary["dominant_expression"] == "happy"
    assert next(c for c in cues if c.name.endswith("expression.happy")).detail["adapted"] == profile.describe()
    plain, _, _ = face_report(np.arange(3) * 0.2, frames, (64, 64), 0.2)
    assert plain.summary["dominant_expression"] == "angry" and "expression_adapted" not in plain.summary


def _smooth_crops(n: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (48, 48)).astype(np.uint8), (7, 7), 2) for _ in range(n)])


def test_nets_re_standardised_on_a_set_read_it_with_home_statistics_at_every_convolution():
    import onnx
    import onnx.version_converter

    from omniemo.perception.conv_restandardise import nearest_home, restandardised, source_statistics
    from omniemo.perception.models import onnx_session

    model = onnx.load(str(model_dir() / "face_expression.onnx"))
    home = _smooth_crops(40, 0)
    statistics = source_statistics(model, home)

    def logits(serialised, crops):
        session = onnx_session(serialised)
        return session.run(None, {"faces": (crops.astype(np.float32) / 255.0)[:, None]})[0]

    # on the faces it knows, nothing moves
    same = restandardised(model, statistics, home)
    assert np.allclose(logits(same, home), logits(model.SerializeToString(), home), atol=1e-3)
    # a darker, flatter camera: every convolution's output, channel by channel, is brought to home's statistics
    dim = (home * 0.5 + 30).astype(np.uint8)
    adapted = onnx.load_from_string(restandardised(model, statistics, dim))
    for (mean_home, sd_home), (mean_set, sd_set) in zip(statistics, source_statistics(adapted, dim)):
        assert np.allclose(mean_set, mean_home, atol=1e-3 * (1 + np.abs(mean_home).max()))
        assert np.allclose(sd_set, sd_home, rtol=1e-3, atol=1e-4)
    # a net exported at an opset before 18 (ReduceMean's axes an attribute) is re-standardised the same way
    older = onnx.version_converter.convert_version(model, 17)
    again = onnx.load_from_string(restandardised(older, statistics, dim))
    assert np.allclose(logits(again.SerializeToString(), dim), logits(adapted.SerializeToString(), dim), atol=1e-4)
    # a model that knows two homes re-standardises a set towards the one it resembles
    homes = {"bright": statistics, "dim": source_statistics(model, dim)}
    assert nearest_home(model, homes, (_smooth_crops(20, 5) * 0.5 + 30).astype(np.uint8)) == "dim"
    assert nearest_home(model, homes, _smooth_crops(20, 6)) == "bright"
    # a degenerate set (one blank image repeated): every scale stays bounded, the answer finite
    blank = onnx.load_from_string(restandardised(model, statistics, np.full((12, 48, 48), 128, np.uint8)))
    stored = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = [i for i in blank.graph.initializer if stored[i.name].ndim == 4]  # each convolution's kernel
    assert len(weights) == len(statistics)
    for init in weights:
        ratio = np.abs(onnx.numpy_helper.to_array(init)).sum((1, 2, 3)) / np.abs(stored[init.name]).sum((1, 2, 3))
        assert np.all(ratio <= 4.0 + 1e-4) and np.all(ratio >= 0.25 - 1e-4)
    assert np.isfinite(logits(blank.SerializeToString(), home)).all()
    with pytest.raises(ValueError, match="at least one face"):
        restandardised(model, statistics, dim[:0])
    with pytest.raises(ValueError, match="statistics of 3 convolutions"):
        restandardised(model, statistics[:3], dim)


def test_a_set_gives_its_faces_in_turns_each_file_spread_over_itself():
    from omniemo.perception.expression import face_profile, spread_faces

    files = [np.full((1, 48, 48), 250, np.uint8), np.arange(50, dtype=np.uint8)[:, None, None] * np.ones((1, 48, 48), np.uint8),
             np.full((3, 48, 48), 200, np.uint8), np.zeros((0, 48, 48), np.uint8)]
    taken = spread_faces(files, 10)
    values = taken[:, 0, 0].tolist()
    assert len(taken) == 10 and values.count(250) == 1 and values.count(200) == 3
    assert sorted(v for v in values if v not in (250, 200)) == [0, 10, 20, 29, 39, 49]  # the long clip, evenly
    assert len(spread_faces(files, 500)) == 54
    profile = face_profile([np.log(np.full(7, 1 / 7))] * 10, [files[1]] * 10)
    assert profile.offset is None and len(profile.crops) == 200 and profile.key
    assert "re-standardised from 200 of its faces" in profile.describe()
    profile.home = "rafdb"
    assert profile.describe().endswith("to the statistics of the RAF-DB faces)") and profile.key.endswith("/rafdb")
    assert np.allclose(profile.apply(np.full(7, 1 / 7)), 1 / 7)  # the nets carry the set: no offset on top


def test_analyze_adapts_the_face_to_a_set_of_images_without_speech(tmp_path):
    import cv2

    from omniemo.media.synth import demo_face

    face = cv2.cvtColor(cv2.resize(demo_face()[:260, 100:360], (96, 96), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    (tmp_path / "set").mkdir()
    for i in range(10):  # tight crops of one face, lit ten ways
        cv2.imwrite(str(tmp_path / "set" / f"{i}.png"), np.clip(face * (0.6 + 0.08 * i), 0, 255).astype(np.uint8))
    clip = tmp_path / "clip.png"
    cv2.imwrite(str(clip), face)
    result = CliRunner().invoke(main, ["analyze", str(clip), "--adapt", str(tmp_path / "set"), "--json"])
    assert result.exit_code == 0, result.output
    face = json.loads(result.stdout)["reasoning"][0]["text"]
    # the terminal is told what was adapted before the answers: the face, and not the voice (images have no speech)
    assert "voice: not adapted (too few files with it)" in result.stderr and "face: adapted to a set (10 files" in result.stderr
    assert re.match(r"The face, adapted to a set \(10 files with a face; the expression nets re-standardised from 10 "
                    r"of its faces to the statistics of the (FER2013|RAF-DB) faces\), reads mostly as", face), face
    few = CliRunner().invoke(main, ["analyze", str(clip), "--adapt", str(tmp_path / "set" / "0.png")])
    assert few.exit_code != 0 and "10 clips" in few.output and "10 files with a face" in few.output
