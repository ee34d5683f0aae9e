"""Are the quoted words what was said? The recogniser's guards on four corpora, with and without the word guard.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_words.py [--clips-per-corpus 40] [--degraded]

Whisper base transcribes English well and low-resource languages badly: on Amharic it writes fluent-looking
Greek, Catalan or Japanese and translates that into English sentences nobody said. ``words.transcribe`` drops a
segment whose words Whisper itself is on average less than 60 % sure of (``MIN_WORD_PROBABILITY``). This runs
``transcribe`` on a fixed random draw of RAVDESS and CREMA-D clips (scripted English sentences: word error rate)
and of ASED (Amharic: Whisper base never detects it, so every quoted word is wrong) and URDU clips (talk shows,
with English mixed in), once with the guard and once without, and reports per corpus the clips with quoted
words, the English word error rate of what was quoted, the correct English transcripts (WER <= 20 %) the guard
dropped, and the clips given an English translation. ``--degraded``: every clip first through the training
augmentation chain (another room, microphone, noise, codec): does the guard cost the words of a worse recording?
Results: bench/out/words.json (words-degraded.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_whisper_context import clips, word_errors

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CORPUS_OF = {"ravdess-speech-16k": "RAVDESS", "crema-d-audio-16k": "CREMA-D", "ased-amharic": "ASED", "urdu": "URDU"}


def corpus_of(path: Path) -> str:
    return next(name for folder, name in CORPUS_OF.items() if folder in path.parts)


def summary(chosen, results) -> dict:
    rows = {}
    for (path, _, sentence), r in zip(chosen, results):
        row = rows.setdefault(corpus_of(path), {"clips": 0, "quoted": 0, "translated": 0, "errors": 0, "ref_words": 0,
                                                "correct": 0, "detected": {}})
        row["clips"] += 1
        row["detected"][r["language"]] = row["detected"].get(r["language"], 0) + 1
        if not r["text"]:
            continue
        row["quoted"] += 1
        row["translated"] += bool(r["translation"])
        if sentence:
            errors, n = word_errors(sentence, r["text"])
            row["errors"] += errors
            row["ref_words"] += n
            row["correct"] += errors <= 0.2 * n
    for row in rows.values():
        errors, ref_words = row.pop("errors"), row.pop("ref_words")
        row["english_wer"] = round(errors / ref_words, 4) if ref_words else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips-per-corpus", type=int, default=40)
    parser.add_argument("--degraded", action="store_true",
                        help="each clip first through the training augmentation chain (noise, room, codec, EQ)")
    args = parser.parse_args()

    from omniemo.media import load_clip
    from omniemo.perception import words
    from omniemo.perception.models import quiet_native_stderr
    from omniemo.perception.voice import speech_spans

    chosen = clips(args.clips_per_corpus)
    guard = words.MIN_WORD_PROBABILITY
    out = {}
    with quiet_native_stderr():
        audio = [load_clip(p, sampling=None).audio for p, _, _ in chosen]
        if args.degraded:
            from omniemo.train.audio_augment import augment

            audio = [augment(a, seed=1000 + i) for i, a in enumerate(audio)]
        spans = [speech_spans(a) for a in audio]
        for name, threshold in (("with the word guard", guard), ("without it", 0.0)):
            words.MIN_WORD_PROBABILITY = threshold
            out[name] = summary(chosen, [words.transcribe(a, s) for a, s in zip(audio, spans)])
            print(name, json.dumps(out[name]), flush=True)
    words.MIN_WORD_PROBABILITY = guard
    print("| corpus | clips | quoted, with the guard / without | translated | English WER of the quoted | correct English transcripts |")
    print("|---|---|---|---|---|---|")
    with_guard, without = out["with the word guard"], out["without it"]
    for corpus, row in with_guard.items():
        other = without[corpus]
        wer = (f"{100 * row['english_wer']:.1f} / {100 * other['english_wer']:.1f} %" if row["english_wer"] is not None
               else "")
        correct = f"{row['correct']} / {other['correct']}" if row["english_wer"] is not None else ""
        print(f"| {corpus} | {row['clips']} | {row['quoted']} / {other['quoted']} | "
              f"{row['translated']} / {other['translated']} | {wer} | {correct} |")
    OUT.mkdir(parents=True, exist_ok=True)
    name = "words-degraded.json" if args.degraded else "words.json"
    (OUT / name).write_text(json.dumps({"min_word_probability": guard, **out}, indent=2))


if __name__ == "__main__":
    main()
