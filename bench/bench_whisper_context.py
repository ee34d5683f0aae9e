"""Would a shorter Whisper window pay? Encoder cost and the words' quality against the encoded context.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_whisper_context.py [--clips-per-corpus 25]

At base size one encoder pass over Whisper's fixed 30 s window is most of a 2 s clip's analysis. Encoding
only the speech plus a margin (``RememberingWhisper.context_frames``) is much cheaper; this measures what it
does to the words: ``words.transcribe`` on the same clips (a fixed random draw of RAVDESS and CREMA-D speech,
whose sentences are known, and ASED and URDU clips, whose language is) with the full window and with 20, 15
and 10 s of context. Reports the encoder time per pass, the English word error rate against the scripted
sentences and the share of clips whose language was detected right. Results: bench/out/whisper_context.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DATA = HERE.parent.parent / "shared" / "data"
CONTEXTS = (None, 2000, 1500, 1000)  # encoded frames (100 a second); None: the full 3,000
CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened", "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about", "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before", "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes"}
NUMBERS = {"11": "eleven"}


def clips(per_corpus: int) -> list[tuple[Path, str, str | None]]:
    """(path, language, scripted sentence or None)."""
    def draw(pattern):
        found = sorted(DATA.glob(pattern))
        random.Random(0).shuffle(found)
        return found[:per_corpus]

    out = [(p, "en", "Kids are talking by the door" if p.name.split("-")[4] == "01" else "Dogs are sitting by the door")
           for p in draw("ravdess-speech-16k/**/*.flac")]
    out += [(p, "en", CREMAD_SENTENCES[p.name.split("_")[1]]) for p in draw("crema-d-audio-16k/*.flac")]
    out += [(p, "am", None) for p in draw("ased-amharic/**/*.ogg")]
    out += [(p, "ur", None) for p in draw("urdu/**/*.ogg")]
    return out


def words_of(text: str) -> list[str]:
    return [NUMBERS.get(w, w) for w in re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("o'clock", "oclock")).split()]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref[i - 1] != hyp[j - 1]))
    return row[-1], len(ref)


def encoder_seconds(model, frames: int, repeats: int = 3) -> float:
    import ctranslate2

    features = ctranslate2.StorageView.from_array(np.zeros((1, 80, frames), np.float32))
    model.model.encode(features)
    start = time.perf_counter()
    for _ in range(repeats):
        model.model.encode(features)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips-per-corpus", type=int, default=25)
    args = parser.parse_args()

    from omniemo.media import load_clip
    from omniemo.perception.models import quiet_native_stderr, whisper_model
    from omniemo.perception.voice import speech_spans
    from omniemo.perception.words import transcribe

    model = whisper_model()
    chosen = clips(args.clips_per_corpus)
    with quiet_native_stderr():
        audio = [load_clip(p, sampling=None).audio for p, _, _ in chosen]
        spans = [speech_spans(a) for a in audio]
        rows = []
        for context in CONTEXTS:
            model.context_frames = context
            model.forget()
            start = time.perf_counter()
            results = [transcribe(a, s) for a, s in zip(audio, spans)]
            errors = [word_errors(sentence, r["text"]) for (_, _, sentence), r in zip(chosen, results) if sentence]
            languages = {}
            for (_, language, _), r in zip(chosen, results):
                languages.setdefault(language, []).append(r["language"] == language)
            rows.append({"context_s": (context or 3000) / 100, "encoder_s": round(encoder_seconds(model, context or 3000), 3),
                         "seconds_all_clips": round(time.perf_counter() - start, 1),
                         "english_wer": round(sum(e for e, _ in errors) / sum(n for _, n in errors), 4),
                         "english_clips_without_words": sum(1 for (_, _, s), r in zip(chosen, results) if s and not r["text"]),
                         "language_right": {k: f"{sum(v)}/{len(v)}" for k, v in languages.items()}})
            print(json.dumps(rows[-1]), flush=True)
    model.context_frames = None
    print("| encoded context | encoder pass | English WER | English clips with no words | language right (en / am / ur) |")
    print("|---|---|---|---|---|")
    for r in rows:
        lang = r["language_right"]
        print(f"| {r['context_s']:.0f} s | {r['encoder_s']:.2f} s | {100 * r['english_wer']:.1f} % | "
              f"{r['english_clips_without_words']} | {lang.get('en')} / {lang.get('am')} / {lang.get('ur')} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "whisper_context.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
