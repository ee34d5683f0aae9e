"""What a new user hit (issue 15): options, destinations, output files, eval edges, workers, quiet library."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from omniemo import files
from omniemo.cli import main
from omniemo.eval.runner import EvalConfig, comparison_table, run_eval
from omniemo.media.synth import write_clip
from omniemo.prediction import Prediction

TESTS = Path(__file__).resolve().parent


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("edges") / "a.wav", 0.5)


# --- options are validated, never a traceback ----------------------------------------------------------------

@pytest.mark.parametrize("fps", ["0", "nan", "inf", "-1", "1e6", "five"])
def test_bad_fps_is_a_usage_error(wav, fps):
    for command in ("analyze", "cues"):
        result = run(command, wav, "--fps", fps)
        assert result.exit_code == 2 and "--fps" in result.output and "Traceback" not in result.output


def test_bad_options_everywhere(wav, tmp_path):
    assert "same emotion" in run("analyze", wav, "--labels", "happy,happy").output
    assert "same emotion" in run("analyze", wav, "--labels", "happy,joy,sad").output
    assert run("analyze", wav, "--modalities", "smell").exit_code == 2
    assert run("eval", "--dataset", "cremad", "--root", tmp_path, "--out", tmp_path / "r", "--workers", "0").exit_code == 2
    assert run("synth", tmp_path / "x.mp4", "--duration", "nan").exit_code == 2
    from omniemo.predictor import get_predictor

    with pytest.raises(ValueError, match="fps"):
        get_predictor("pipeline", fps=float("inf"))


# --- destinations are checked before any analysis ------------------------------------------------------------

def test_unwritable_destinations_fail_first(wav, tmp_path, monkeypatch):
    import omniemo.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "get_predictor", lambda *a, **k: pytest.fail("analysis started"))
    for target in (tmp_path / "missing" / "r.html", tmp_path, Path("/proc/version")):
        result = run("analyze", wav, "--report", target)
        assert result.exit_code == 2 and str(target) in result.output and "Traceback" not in result.output
    result = run("cues", wav, "--out", tmp_path / "missing" / "c.json")
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "afile").write_text("x")
    assert run("eval", "--dataset", "cremad", "--root", tmp_path, "--out", tmp_path / "afile").exit_code == 2


def test_reports_of_clips_with_the_same_stem_get_their_own_names(tmp_path):
    from omniemo.cli.analyze import _report_targets

    clips = [tmp_path / "a.flv", tmp_path / "a.mp4", tmp_path / "b.wav", tmp_path / "x" / "a.mp4"]
    targets = _report_targets(clips, tmp_path / "reports")
    assert len(set(targets.values())) == 4 and (tmp_path / "reports").is_dir()
    assert targets[clips[2]].name == "b.html" and targets[clips[0]].name == "a-flv.html"


# --- output files appear whole or not at all ----------------------------------------------------------------

def test_a_killed_write_keeps_the_previous_file(tmp_path):
    report = tmp_path / "out.html"
    report.write_text("the previous report")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(report) as temp:
            temp.write_text("<html>half")
            raise KeyboardInterrupt
    assert report.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["out.html"]  # no temporary left behind
    files.write_text(report, "new")
    assert report.read_text() == "new"


def test_writers_go_through_the_atomic_path():
    # every module that writes a user-visible file does it through omniemo.files
    src = TESTS.parent / "src" / "omniemo"
    for module in ("report.py", "eval/runner.py", "eval/engines.py", "train/fusion.py", "train/face_expression.py", "train/speech_emotion.py", "train/loop.py",
                   "perception/speech_emotion.py", "cli/analyze.py", "cli/evaluate.py"):
        text = (src / module).read_text()
        assert "files." in text, module
        assert ".write_text(" not in text.replace("files.write_text(", ""), module
        assert "savefig(path" not in text, module


# --- eval edges ------------------------------------------------------------------------------------------------

class _Fixed:
    name = "fixed"

    def __init__(self, **_):
        pass

    def predict(self, path, labels="dfew"):
        return Prediction(path=str(path), label="worried", probabilities={"worried": 1.0},
                          output="<think>x</think>\n<answer>worried</answer>")


@pytest.fixture
def fixed_backend(monkeypatch):
    import omniemo.predictor as predictor_module

    real = predictor_module.get_predictor
    monkeypatch.setattr(predictor_module, "get_predictor",
                        lambda backend="pipeline", **o: _Fixed() if backend == "fixed" else real(backend, **o))


def _manifest(path, wav, labels):
    path.write_text("".join(json.dumps({"path": str(wav), "label": lab, "id": f"c{i}"}) + "\n"
                            for i, lab in enumerate(labels)))
    return path


def test_manifest_reads_and_scores_in_the_runs_label_set(tmp_path, wav, fixed_backend):
    manifest = _manifest(tmp_path / "mer.jsonl", wav, ["worried", "happy"])
    summary = run_eval(EvalConfig(dataset="manifest", root=str(manifest), out_dir=str(tmp_path / "run"),
                                  model="fixed", labels="mer2023"))
    assert summary["scores"]["paper"]["labelset"] == "mer2023" and summary["scores"]["paper"]["war"] == 0.5
    assert summary["name"] == "mer" and summary["in_distribution"] is None
    mafw = _manifest(tmp_path / "mafw.jsonl", wav, ["anxious", "helpless"])
    run_eval(EvalConfig(dataset="manifest", root=str(mafw), out_dir=str(tmp_path / "run2"), model="fixed", labels="mafw"))


def test_manifest_runs_get_a_column_each(tmp_path, wav, fixed_backend):
    for name in ("corpus_a", "corpus_b"):
        manifest = _manifest(tmp_path / f"{name}.jsonl", wav, ["worried"])
        run_eval(EvalConfig(dataset="manifest", root=str(manifest), out_dir=str(tmp_path / name), model="fixed",
                            labels="mer2023", in_distribution=name == "corpus_a"))
    markdown, _ = comparison_table([tmp_path / "corpus_a", tmp_path / "corpus_b"], paper_rows=False)
    assert "CORPUS_A (WAR) ⬤" in markdown and "CORPUS_B (WAR) △" in markdown
    run_eval(EvalConfig(dataset="manifest", root=str(tmp_path / "corpus_a.jsonl"), out_dir=str(tmp_path / "c"),
                        model="fixed", labels="mer2023", name="corpus_b"))
    with pytest.raises(ValueError, match="--name"):
        comparison_table([tmp_path / "corpus_b", tmp_path / "c"])


def test_an_empty_split_says_so_and_writes_nothing(crema_samples, tmp_path):
    out = tmp_path / "run"
    result = run("eval", "--dataset", "cremad", "--root", crema_samples, "--out", out)
    assert result.exit_code == 2 and "holds no items" in result.output and "train (12)" in result.output
    assert not out.exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = run("eval", "--dataset", "manifest", "--root", empty, "--out", out)
    assert result.exit_code == 2 and "manifest is empty" in result.output and not out.exists()


def test_workers_die_with_their_parent(tmp_path):
    script = textwrap.dedent(f"""
        import multiprocessing, sys, time
        from concurrent.futures import ProcessPoolExecutor
        sys.path.insert(0, {str(TESTS)!r})
        from slow_predictor import SlowPredictors
        from omniemo.data.datasets import Item
        from omniemo.eval.engines import _worker_init, _worker_predict
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                                   initargs=(SlowPredictors(), "eval", 2))
        futures = [pool.submit(_worker_predict, Item(str(i), "x.wav", "happy"), "dfew") for i in range(4)]
        time.sleep(8)
        print(" ".join(str(p) for p in pool._processes), flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited; only its parent's reaping is left


# --- the model's output, the library's noise, the documented verify ----------------------------------------------

def test_an_output_without_answer_is_printed_raw_with_a_note(wav, monkeypatch):
    import omniemo.predictor as predictor_module

    class Rambling:
        name = "rambling"
        progress = None

        def predict(self, path, labels="dfew"):
            return Prediction(path=str(path), label="<|endoftext|> blah", probabilities={},
                              output="<|endoftext|> blah", backend="tiny")

    monkeypatch.setattr(predictor_module, "get_predictor", lambda *a, **k: Rambling())
    result = CliRunner().invoke(main, ["analyze", str(wav)])
    assert "<|endoftext|> blah" in result.stdout
    assert "no answer" in result.stderr


def test_the_library_is_quiet_by_default(crema_samples, tmp_path):
    # first a clip that decodes no frame: the pose graph, built for it and never run, had logged after the clip
    cut = tmp_path / "cut.flv"
    cut.write_bytes((crema_samples / "1001_DFA_ANG_XX.flv").read_bytes()[:20_000])
    code = ("from omniemo.predictor import get_predictor; p = get_predictor('pipeline'); "
            f"p.predict({str(cut)!r}, 'cremad'); import time; time.sleep(0.5); "
            f"p.predict({str(crema_samples / '1001_DFA_HAP_XX.flv')!r}, 'cremad')")
    env = {k: v for k, v in os.environ.items() if k != "OMNIEMO_NATIVE_LOGS"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr.strip() == "", quiet.stderr[-2000:]
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**env, "OMNIEMO_NATIVE_LOGS": "1"})
    assert loud.returncode == 0 and loud.stderr.strip() != ""


def test_verify_works_as_documented(crema_samples):
    from omniemo.predictor import get_predictor
    from omniemo.reasoning import verify

    p = get_predictor("pipeline").predict(crema_samples / "1001_DFA_ANG_XX.flv", "cremad")
    assert verify(p.reasoning, p.evidence) == []
    forged = [dict(s) for s in p.reasoning]
    forged[-1]["text"] = forged[-1]["text"].replace(f"{p.probabilities[p.label]:.2f}", "0.123")
    assert any("0.123" in problem for problem in verify(forged, p.evidence))


def test_eval_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    import pty

    root = tmp_path / "cremad" / "AudioWAV"
    for name in ("1031_DFA_ANG_XX", "1032_DFA_SAD_XX"):
        write_clip(root / f"{name}.wav", 0.5)
    command = [sys.executable, "-m", "omniemo", "eval", "--dataset", "cremad", "--root", str(tmp_path / "cremad"),
               "--modalities", "audio", "--out"]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    primary, secondary = pty.openpty()
    run_tty = subprocess.Popen(command + [str(tmp_path / "tty")], stderr=secondary, stdout=subprocess.DEVNULL, env=env)
    os.close(secondary)
    seen = b""
    try:  # read while the child runs: after it hangs up, unread terminal output may be dropped
        while chunk := os.read(primary, 65536):
            seen += chunk
    except OSError:
        pass
    os.close(primary)
    assert run_tty.wait(timeout=300) == 0 and b"clip" in seen and b"100%" in seen
    piped = subprocess.run(command + [str(tmp_path / "pipe")], capture_output=True, env=env, timeout=300)
    assert piped.returncode == 0 and b"100%" not in piped.stderr


def test_worker_processes_share_the_cores_among_their_native_threads(tmp_path, monkeypatch):
    """Two eval workers each running Whisper on two threads oversubscribed 2 cores (2 workers were slower than 1)."""
    import os
    import sys

    from omniemo.data.datasets import Item
    from omniemo.eval.engines import run_local
    from omniemo.perception.models import THREADS_ENV, native_threads

    sys.path.insert(0, str(TESTS))
    from slow_predictor import ThreadsPredictors

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert native_threads() == 2
    monkeypatch.setenv(THREADS_ENV, "junk")
    assert native_threads() == 2
    rows = []
    run_local([Item(str(i), "x.wav", "happy") for i in range(2)], ThreadsPredictors(), "dfew", rows.append, workers=2)
    assert {r["error"] for r in rows} == {f"RuntimeError: threads {max(1, (os.cpu_count() or 1) // 2)}"}
