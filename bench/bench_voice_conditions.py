"""The voice emotion under the recording conditions a user's file may have.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_voice_conditions.py [--clips 150] [--short]

The same dev-speaker clips of RAVDESS (actors 17-20) and CREMA-D (the dev actors) from ../shared/data, a seeded
sample of each, read as recorded and changed one way at a time: quieter (the loudest 30 ms frames at -50 or
-60 dBFS: a low-gain or distant microphone), a DC offset, a telephone band, mains hum, clipping, white noise,
a low-pass, a noisy lead-in. Per condition: UAR over the corpus's classes, how many answers agree with the
clip as recorded, and how many clips got no voice emotion (no speech found). The detector and the voice model
run as `analyze` runs them (Silero VAD spans, per-utterance emotion). Results: bench/out/voice_conditions.json.

``--short``: instead, only the first 0.3-1.5 s of each clip's speech is heard (the clip cut there): how much
speech the voice model needs, with the accuracy of the answers given and the probability they were stated at.
Results: bench/out/voice_short.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
ROOTS = {"ravdess": DATA / "ravdess-speech-16k", "cremad": DATA / "crema-d-audio-16k"}
SR = 16_000


def at_level(dbfs: float):
    """The recording scaled so that its loud parts (the 99th percentile of 30 ms frames) sit at ``dbfs``."""
    from omniemo.perception.voice import loudest_frames_dbfs

    return lambda a: a * 10 ** ((dbfs - loudest_frames_dbfs(a)) / 20)


def with_noise(snr_db: float):
    def add(a):
        rms = np.sqrt(np.mean(a**2))
        return a + np.random.default_rng(2).normal(0, rms / 10 ** (snr_db / 20), a.size)
    return add


def with_hum(a):
    return a + 0.05 * np.abs(a).max() * np.sin(2 * np.pi * 50 * np.arange(a.size) / SR)


def lead_in(a):
    floor = np.random.default_rng(1).normal(0, 1e-3, SR * 5)
    return np.r_[floor, a, floor[:SR]]


def first_speech(seconds: float):
    """The clip cut after its first ``seconds`` of detected speech (a short word or a cut-off sentence)."""
    from omniemo.perception.voice import speech_spans

    def cut(a):
        spans = speech_spans(a.astype(np.float32))
        return a[: int((spans[0][0] + seconds + 0.05) * SR)] if spans else a
    return cut


SPEECH_HEARD = (0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5)  # seconds
SHORT = {"as recorded": lambda a: a} | {f"first {s} s of speech": first_speech(s) for s in SPEECH_HEARD}

CONDITIONS = {
    "as recorded": lambda a: a,
    "quiet: loudest frames at -50 dBFS": at_level(-50),
    "very quiet: loudest frames at -60 dBFS": at_level(-60),
    "DC offset 0.05": lambda a: a + 0.05,
    "telephone band (8 kHz and back)": lambda a: resample_poly(resample_poly(a, 1, 2), 2, 1)[: a.size],
    "50 Hz mains hum": with_hum,
    "clipped (x8 into full scale)": lambda a: np.clip(a * 8 / (np.abs(a).max() + 1e-9), -1, 1),
    "white noise at 10 dB SNR": with_noise(10),
    "low-pass 3 kHz": lambda a: sosfilt(butter(8, 3000, fs=SR, output="sos"), a),
    "5 s of noise floor before the speech": lead_in,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=150, help="dev clips per corpus (a seeded sample)")
    parser.add_argument("--short", action="store_true", help="only the first 0.3-1.5 s of speech heard instead")
    args = parser.parse_args()
    conditions = SHORT if args.short else CONDITIONS
    from omniemo.labels import get_labelset
    from omniemo.media import load_clip
    from omniemo.perception.models import quiet_native_stderr
    from omniemo.perception.speech_emotion import default_model, segment_emotions
    from omniemo.perception.voice import speech_spans
    from omniemo.train.speech_emotion import corpus_items

    model = default_model()
    results = {}
    print("| corpus | condition | UAR % | same answer as recorded % | no voice emotion | right when answered % |"
          " stated probability % |\n|---|---|---|---|---|---|---|")
    for corpus, root in ROOTS.items():
        items = [it for it in corpus_items(corpus, root) if it.split == "dev"]
        pick = np.random.default_rng(0).choice(len(items), min(args.clips, len(items)), replace=False)
        items = [items[i] for i in sorted(pick)]
        classes = [model.labels.index(lab) for lab in get_labelset(corpus).labels]
        truth = np.array([model.labels.index(it.label) for it in items])
        audio = [load_clip(it.path, sampling=None).audio.astype(np.float64) for it in items]
        as_recorded = None
        for name, change in conditions.items():
            answers, stated = [], []
            with quiet_native_stderr():
                for clip in audio:
                    x = change(clip).astype(np.float32)
                    heard = segment_emotions(x, speech_spans(x), model)
                    answers.append(-1 if heard is None else classes[int(np.argmax(heard.probabilities[classes]))])
                    if heard is not None:
                        stated.append(float(heard.probabilities[classes].max() / heard.probabilities[classes].sum()))
            answers = np.array(answers)
            answered = answers >= 0
            as_recorded = answers if as_recorded is None else as_recorded
            row = {"uar": round(100 * float(np.mean([np.mean(answers[truth == k] == k) for k in np.unique(truth)])), 1),
                   "agreement": round(100 * float(np.mean(answers == as_recorded)), 1),
                   "no_emotion": int((answers < 0).sum()), "clips": len(items),
                   "right_when_answered": round(100 * float(np.mean(answers[answered] == truth[answered])), 1)
                   if answered.any() else None,
                   "stated": round(100 * float(np.mean(stated)), 1) if stated else None}
            results[f"{corpus}: {name}"] = row
            print(f"| {corpus} | {name} | {row['uar']} | {row['agreement']:.0f} | {row['no_emotion']} of {len(items)} |"
                  f" {row['right_when_answered']} | {row['stated']} |", flush=True)
    (HERE / "out").mkdir(exist_ok=True)
    result_file = HERE / "out" / ("voice_short.json" if args.short else "voice_conditions.json")
    result_file.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
