"""`omniemo serve`: the API with FastAPI's TestClient (real worker processes), and the page in a real browser."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omniemo.serve import ServeSettings, create_app

CLIP = "1001_DFA_HAP_XX.flv"


def _client(**overrides):
    settings = ServeSettings(**{"factory": "serve_doubles:fake", "warm": False, "workers": 1, **overrides})
    return TestClient(create_app(settings))


def _wait(client, job_id, headers=None, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/analyses/{job_id}", headers=headers or {}).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _upload(client, path, headers=None, **fields):
    with open(path, "rb") as handle:
        return client.post("/v1/analyses", files={"file": (Path(path).name, handle)},
                           data={k: str(v) for k, v in fields.items()}, headers=headers or {})


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    from omniemo.media.synth import write_clip

    return write_clip(tmp_path_factory.mktemp("serve") / "tone.wav", 1.0)


def test_routes_and_a_job_end_to_end(wav):
    with _client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        page = client.get("/")
        assert page.status_code == 200 and "EU AI Act" in page.text and "<script" in page.text
        assert client.get("/static/app.js").status_code == 200 and client.get("/static/../app.py").status_code == 404
        assert "/v1/analyses" in client.get("/openapi.json").json()["paths"]
        created = _upload(client, wav, labels="cremad", report="false")
        assert created.status_code == 202
        job = _wait(client, created.json()["id"])
        assert job["status"] == "done" and job["result"]["label"] == "happy" and job["result"]["path"] == "tone.wav"
        assert job["options"]["labels"] == "cremad"
        assert [j["id"] for j in client.get("/v1/analyses").json()] == [job["id"]]
        assert client.get(f"/v1/analyses/{job['id']}/report").status_code == 404  # none asked for
        models = client.get("/v1/models").json()
        assert models["workers"] == 1 and "voice" in models["pipeline"]
        folder = Path(client.app.state.store.get(job["id"]).folder)
        assert folder.exists()
        assert client.delete(f"/v1/analyses/{job['id']}").status_code == 204
        assert client.get(f"/v1/analyses/{job['id']}").status_code == 404 and not folder.exists()
        assert client.get("/v1/analyses/not-a-job").status_code == 404


def test_an_adapted_server_hands_its_voice_and_face_profiles_to_every_worker(wav):
    """`serve --adapt`: the profiles are made once, by the server, and every worker's predictor gets them."""
    import numpy as np

    from omniemo.perception.speech_emotion import VoiceProfile

    from omniemo.perception.expression import face_profile

    profile = VoiceProfile(np.zeros(4), np.ones(4), 12, "corpus")
    faces = face_profile([np.zeros(7)] * 12, [np.full((3, 48, 48), 100, np.uint8)] * 12)  # pickled to each worker
    faces.home = "rafdb"
    with _client(adaptation={"voice_profile": profile, "face_profile": faces}) as client:
        models = client.get("/v1/models").json()
        assert models["voice_adaptation"] == "adapted to a recording set (12 clips)"
        assert models["face_adaptation"] == ("adapted to a set (12 files with a face; the expression nets re-standardised "
                                             "from 36 of its faces to the statistics of the RAF-DB faces)")
        job = _wait(client, _upload(client, wav).json()["id"])
        assert job["status"] == "done"
        assert job["result"]["reasoning"][0]["text"].endswith(
            "the voice adapted to a recording set (12 clips), the face " + models["face_adaptation"])
    with _client() as client:
        assert client.get("/v1/models").json()["voice_adaptation"] is None


def test_serve_adapt_refuses_too_few_clips_before_starting(tmp_path, wav):
    from click.testing import CliRunner

    from omniemo.cli import main

    for i in range(3):
        shutil.copy(wav, tmp_path / f"{i}.wav")
    result = CliRunner().invoke(main, ["serve", "--adapt", str(tmp_path), "--port", "1"])
    assert result.exit_code == 2 and "adaptation" in result.output and "10 clips" in result.output


def test_token_is_required_and_checked(wav):
    with _client(token="s3cret") as client:
        assert client.get("/v1/analyses").status_code == 401
        assert client.get("/v1/analyses", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/analyses", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert _upload(client, wav).status_code == 401
        assert client.get("/healthz").status_code == 200  # health stays open
    with pytest.raises(ValueError, match="without a token"):
        create_app(ServeSettings(host="0.0.0.0"))


def test_bad_uploads_are_refused_with_the_clis_message(wav, tmp_path):
    with _client(max_upload_mb=0.05) as client:
        text = tmp_path / "notes.mp4"
        text.write_text("not a video\n" * 100)
        bad = _upload(client, text)
        assert bad.status_code == 422 and "notes.mp4" in bad.json()["detail"] and "not a readable media file" in bad.json()["detail"]
        assert str(tmp_path) not in bad.text  # no server path, no traceback
        big = tmp_path / "big.wav"
        big.write_bytes(b"\0" * 200_000)
        assert _upload(client, big).status_code == 413
        assert _upload(client, wav, fps="nan").status_code == 422
        assert _upload(client, wav, labels="happy,happy").status_code == 422
        assert client.post("/v1/analyses", content=b"raw", headers={"content-type": "application/octet-stream"}).status_code == 422
        assert client.app.state.store.recent() == []  # nothing of these was kept


def test_a_full_queue_answers_429(wav):
    with _client(queue=1) as client:
        first = _upload(client, wav, labels="mafw")
        assert first.status_code == 202
        answers = [_upload(client, wav, labels="mafw") for _ in range(3)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused and refused[0].headers["retry-after"] == "10"


def test_a_job_that_crashes_its_worker_fails_and_the_worker_restarts(wav):
    with _client() as client:
        crashed = _wait(client, _upload(client, wav, labels="ravdess").json()["id"])
        assert crashed["status"] == "failed" and "crashed its worker" in crashed["error"], crashed
        after = _wait(client, _upload(client, wav).json()["id"])
        assert after["status"] == "done"


def test_state_survives_a_restart(wav, tmp_path):
    with _client(state=tmp_path / "state") as client:
        job = _wait(client, _upload(client, wav).json()["id"])
    with _client(state=tmp_path / "state") as client:
        assert client.get(f"/v1/analyses/{job['id']}").json()["result"]["label"] == "happy"


def test_job_json_equals_analyze_json(crema_samples, tmp_path):
    from click.testing import CliRunner

    from omniemo.cli import main

    clip = crema_samples / CLIP
    cli = CliRunner().invoke(main, ["analyze", str(clip), "--json", "--labels", "cremad"])
    expected = json.loads(cli.stdout[cli.stdout.index("{"):])
    with TestClient(create_app(ServeSettings(workers=1, warm=False))) as client:
        job = _wait(client, _upload(client, clip, labels="cremad", report="true").json()["id"], timeout=300)
        assert job["status"] == "done", job
        report = client.get(job["report_url"])
        assert report.status_code == 200 and "<html" in report.text
    got = job["result"]

    def strip(d):
        d = json.loads(json.dumps(d))
        d.pop("path")
        d["evidence"].pop("timings")
        d["evidence"]["clip"].pop("path")
        return d

    assert strip(got) == strip(expected)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not shutil.which("chromium"), reason="Chromium not installed (.ci/run installs it from Debian)")
def test_the_page_in_a_real_browser(crema_samples, tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "omniemo", "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(f"http://127.0.0.1:{port}/")
            assert "EU AI Act" in page.inner_text("#ai-act")
            page.set_input_files("#file", str(crema_samples / CLIP))
            page.select_option("#labels", "cremad")
            page.click("#analyse")
            page.wait_for_selector("#result:not([hidden])", timeout=240_000)
            answer = page.inner_text("#answer")
            assert answer in ("angry", "disgust", "fear", "happy", "neutral", "sad")
            assert page.locator("#reasoning li").count() >= 3
            page.hover("#reasoning .cue >> nth=0")
            assert " = " in page.inner_text("#cue-detail")
            page.wait_for_selector("#report-frame:not([hidden])", timeout=30_000)
            shot = tmp_path / "serve-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
