"""Corpus-scale runs: `omniemo batch`, and the Ray Data engine against the local one (a local Ray of 2 CPUs)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from omniemo.cli import main

CLIPS = ("03-01-05-01-01-01-21", "03-01-03-01-01-01-22", "03-01-04-02-02-01-21", "03-01-01-01-02-01-22")


@pytest.fixture(scope="module")
def corpus(ravdess_speech, tmp_path_factory):
    """A manifest of four real RAVDESS clips and one broken file."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for name in CLIPS:
        (root / f"{name}.flac").symlink_to(ravdess_speech / f"{name}.flac")
        rows.append({"path": f"{name}.flac", "label": "neutral", "id": name})
    (root / "broken.flac").write_bytes(b"fLaC but nothing after")
    rows.append({"path": "broken.flac", "label": "sad", "id": "broken"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _eval(corpus, out, engine, *extra):
    result = CliRunner().invoke(main, ["eval", "--dataset", "manifest", "--root", str(corpus / "manifest.jsonl"),
                                       "--labels", "ravdess", "--modalities", "audio", "--out", str(out),
                                       "--engine", engine, "--workers", "2", "--json", *extra])
    assert result.exit_code == 0, result.output
    return {r["id"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}


def test_ray_engine_gives_the_local_engines_predictions(corpus, tmp_path):
    local = _eval(corpus, tmp_path / "local", "local")
    ray_rows = _eval(corpus, tmp_path / "ray", "ray")
    assert set(local) == set(ray_rows) == {*CLIPS, "broken"}
    assert "error" in ray_rows["broken"] and "broken.flac" in ray_rows["broken"]["error"]
    for item in CLIPS:
        assert ray_rows[item]["prediction"] == local[item]["prediction"]
        assert ray_rows[item]["probabilities"] == pytest.approx(local[item]["probabilities"], abs=1e-6)
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["engine"] == "ray" and run["ray_start_seconds"] > 0
    scores = json.loads((tmp_path / "ray" / "scores.json").read_text())
    assert scores["errors"] == 1 and scores["paper"]["n"] == 5


def test_a_killed_ray_driver_resumes_without_repeating(ravdess_speech, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = sorted(ravdess_speech.glob("03-01-0*-01-01-*-2[34].flac"))[:16]
    for f in files:
        (corpus / f.name).symlink_to(f)
    (corpus / "manifest.jsonl").write_text("".join(json.dumps({"path": f.name, "label": "neutral", "id": f.stem}) + "\n"
                                                   for f in files))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "omniemo", "eval", "--dataset", "manifest", "--root", str(corpus / "manifest.jsonl"),
               "--labels", "ravdess", "--modalities", "audio", "--out", str(out), "--engine", "ray", "--workers", "1"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    predictions = out / "predictions.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (predictions.exists() and predictions.read_text().count("\n") >= 2):
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait()
    before = [json.loads(line)["id"] for line in predictions.read_text().splitlines() if line.endswith("}")]
    assert 2 <= len(before) < len(files)
    rows = _eval(corpus, out, "ray")
    ids = [json.loads(line)["id"] for line in predictions.read_text().splitlines()]
    assert sorted(ids) == sorted(f.stem for f in files) and len(rows) == len(files)  # each once: finished ones skipped
    assert json.loads((out / "run.json").read_text())["ran_now"] == len(files) - len(before)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_batch_writes_one_row_per_clip(corpus, tmp_path, engine):
    out = tmp_path / engine
    result = CliRunner().invoke(main, ["batch", str(corpus / f"{CLIPS[0]}.flac"), str(corpus / "broken.flac"),
                                       str(corpus / "missing.wav"), "--modalities", "audio", "--out", str(out),
                                       "--engine", engine, "--no-evidence"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    good = next(r for r in rows if r["id"].endswith(f"{CLIPS[0]}.flac"))
    assert good["output"].startswith("<think>") and "evidence" not in good and good["label"] in good["probabilities"]
    assert sum("error" in r for r in rows) == 2 and any("missing.wav" in r.get("error", "") for r in rows)
    again = CliRunner().invoke(main, ["batch", str(corpus / f"{CLIPS[0]}.flac"), "--out", str(out), "--engine", engine])
    assert json.loads(again.stdout.strip().splitlines()[-1])["ran_now"] == 0
