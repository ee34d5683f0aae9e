import json

from click.testing import CliRunner

from omniemo.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help_carries_the_ai_act_note():
    result = run("--help")
    assert result.exit_code == 0 and "EU AI Act" in result.output
    for command in ("probe", "score", "synth"):
        assert run(command, "--help").exit_code == 0


def test_probe_batch_goes_on_after_a_bad_file(clips, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = run("probe", clips[".mp4"], bad, clips[".wav"], "--json")
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert len(rows) == 3
    assert rows[0]["has_video"] and rows[0]["has_audio"]
    assert rows[1]["error"]["kind"] == "corrupt" and str(bad) in rows[1]["error"]["message"]
    assert rows[2]["missing_modalities"] == ["video"]


def test_probe_text(crema_samples):
    result = run("probe", crema_samples / "1001_DFA_ANG_XX.flv")
    assert result.exit_code == 0
    assert "vp6f 480x360" in result.output and "mp3" in result.output


def _write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_score_predictions_and_outputs(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [
        {"label": "happy", "prediction": "happy"},
        {"label": "sad", "output": "<think>slow, low voice</think>\n<answer>sad</answer>"},
        {"label": "angry", "output": "<answer>Anger</answer>"},
        {"label": "fear", "error": "corrupt file"},
    ])
    result = run("score", path, "--labels", "dfew", "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["war"] == 0.75 and scores["errors"] == 1
    assert scores["format_rate"] == 0.5 and scores["strict_accuracy"] == 0.5
    text = run("score", path, "--labels", "dfew")
    assert "WAR  75.00 %" in text.output and "confusion" in text.output


def test_score_accepts_dataset_codes_and_protocols(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [
        {"label": "02", "prediction": "neutral"},
        {"label": "01", "prediction": "neutral"},
    ])
    paper = json.loads(run("score", path, "--labels", "ravdess", "--json", "--bootstrap", "0").stdout)
    corrected = json.loads(run("score", path, "--labels", "ravdess", "--protocol", "corrected", "--json").stdout)
    assert paper["war"] == 0.5 and corrected["war"] == 1.0


def test_score_bad_input_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"label": "happy", "prediction": "happy"}\n{oops\n')
    result = run("score", path, "--labels", "dfew")
    assert result.exit_code == 2
    assert f"{path}:2" in result.output and "not valid JSON" in result.output
    assert "Traceback" not in result.output
    unknown = _write_jsonl(tmp_path / "u.jsonl", [{"label": "calm", "prediction": "calm"}])
    result = run("score", unknown, "--labels", "dfew")
    assert result.exit_code == 2 and f"{unknown}:1" in result.output
    missing = run("score", tmp_path / "none.jsonl", "--labels", "dfew")
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_synth_then_probe(tmp_path):
    out = tmp_path / "demo.webm"
    assert run("synth", out, "--duration", "1", "--size", "64x48").exit_code == 0
    result = run("probe", out, "--json")
    assert json.loads(result.stdout)[0]["video_codec"] == "vp8"
    assert run("synth", tmp_path / "x.xyz").exit_code == 2
