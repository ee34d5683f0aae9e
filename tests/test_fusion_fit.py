"""Fitting the fusion weights from eval runs (`omniemo train fusion`) and the weights that ship."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from omniemo.cli import main
from omniemo.reasoning.fusion import PRIOR_FLOORS, PRIOR_WEIGHTS, fuse, shipped_floors, shipped_weights
from omniemo.train.fusion import FusionFitConfig, fit_weights, nll, read_rows, train

LABELS = ("angry", "happy", "neutral", "sad")


def _softmax(z):
    z = z - z.max()
    return np.exp(z) / np.exp(z).sum()


def write_run(folder, n=300, seed=0):
    """An eval run whose voice is informative but 3x overconfident and whose face is noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        truth = int(rng.integers(len(LABELS)))
        evidence = rng.normal(0, 1, len(LABELS))
        evidence[truth] += 1.0
        voice = _softmax(3 * evidence)  # calibrated would be softmax(evidence)
        face = _softmax(2 * rng.normal(0, 1, len(LABELS)))
        lines.append({"id": f"c{i}", "path": f"c{i}.mp4", "label": LABELS[truth], "prediction": LABELS[int(np.argmax(voice))],
                      "modalities": {"voice": dict(zip(LABELS, voice.tolist())), "face": dict(zip(LABELS, face.tolist()))}})
    lines.append({"id": "bad", "path": "bad.mp4", "label": "sad", "error": "DecodeError: truncated"})
    (folder / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    return folder


def test_fit_recovers_temperature_and_ignores_noise(tmp_path):
    rows, skipped = read_rows(str(write_run(tmp_path / "run")))
    assert len(rows) == 300 and skipped == {"error": 1}
    start = dict(PRIOR_WEIGHTS)
    weights, floors = fit_weights(rows, ("face", "voice"), start, prior_sd=10.0)
    assert 0.2 < weights["voice"] < 0.6  # about 1/3: undoes the overconfidence
    assert weights["face"] < 0.15  # noise gets (nearly) no say
    assert weights["text"] == start["text"]  # not fitted
    assert all(0.02 <= f <= 0.5 for f in floors.values())
    assert nll(rows, weights, floors) < nll(rows, start, PRIOR_FLOORS) - 0.2


def test_prior_holds_a_modality_with_few_clips(tmp_path):
    rows, _ = read_rows(str(write_run(tmp_path / "run", n=4)))
    loose, _ = fit_weights(rows, ("face",), dict(PRIOR_WEIGHTS), prior_sd=10.0)
    tight, _ = fit_weights(rows, ("face",), dict(PRIOR_WEIGHTS), prior_sd=0.1)
    assert abs(tight["face"] - 1.0) < abs(loose["face"] - 1.0) + 1e-9
    assert abs(tight["face"] - 1.0) < 0.1


def test_run_modalities_filter_and_errors(tmp_path):
    run = write_run(tmp_path / "run", n=20)
    rows, _ = read_rows(f"{run}:voice")
    assert all(set(r.dists) == {"voice"} for r in rows)
    with pytest.raises(ValueError, match="unknown modality"):
        read_rows(f"{run}:smell")
    with pytest.raises(ValueError, match="no predictions.jsonl"):
        read_rows(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="cannot fit"):
        train(FusionFitConfig(runs=[str(run)], fit=("smell",)))


def test_cli_writes_weights_with_provenance(tmp_path):
    run = write_run(tmp_path / "run")
    result = CliRunner().invoke(main, ["train", "fusion", f"{run}:voice,face", "--out-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "NLL" in result.output and "ECE" in result.output
    report = json.loads((tmp_path / "w" / "fusion_weights.json").read_text())
    assert report["fitted"] == ["face", "voice"] and report["clips_per_modality"]["voice"] == 300
    assert report["all"]["after"]["nll"] < report["all"]["before"]["nll"]


def test_shipped_weights_are_the_cards_and_are_used():
    from importlib import resources

    report = json.loads(resources.files("omniemo.reasoning").joinpath("weights", "fusion_weights.json").read_text())
    # a modality not fitted keeps its calibrated prior weight, and the card's notes say why (the face: six video clips
    # of one actor are too few; the voice: its temperature was fitted on corpora it never heard)
    assert report["all"]["after"]["nll"] <= report["all"]["before"]["nll"]
    for name in ("face", "voice"):
        assert name in report["fitted"] or any(n.startswith(f"{name.title()}: not fitted") for n in report["notes"])
        if name not in report["fitted"]:
            assert report["weights"][name] == PRIOR_WEIGHTS[name]
    weights = shipped_weights()
    assert weights == {**PRIOR_WEIGHTS, **report["weights"]}
    fusion = fuse({"face": {"happy": 0.9, "sad": 0.1}, "voice": {"sad": 0.8, "happy": 0.2}}, "ravdess")
    assert fusion.weights == {"face": weights["face"], "voice": weights["voice"]}


def test_no_modality_vetoes_a_label_the_others_support():
    # a face model that never says disgust (1e-4) against a voice sure of it: the answer follows the evidence
    face = {label: (1 - 0.0001) / 6 for label in ("angry", "fear", "happy", "sad", "surprise", "neutral")}
    face["disgust"] = 0.0001
    voice = {"angry": 0.1, "disgust": 0.7, "fear": 0.05, "happy": 0.02, "sad": 0.1, "neutral": 0.03}
    fusion = fuse({"face": face, "voice": voice}, "cremad")
    assert fusion.label == "disgust"
    assert all(f >= 0.02 for f in shipped_floors().values()) and fusion.floors == {m: shipped_floors()[m] for m in ("face", "voice")}
    # without the floor the face's near-zero would have vetoed it
    assert fuse({"face": face, "voice": voice}, "cremad", floors={"face": 0.0, "voice": 0.0}).label != "disgust"
