"""Grounded reasoning: the <think> text written only from measured cues, each sentence citing them.

Every sentence is a dict ``{"text", "cues", "spans"}``: ``cues`` are ids in the evidence record, ``spans``
the [start, end] seconds the sentence talks about. ``verify`` checks a reasoning against its evidence: each
sentence cites existing cues, and each time span and number it prints comes from those cues (or from the
fused probabilities, for the closing sentence).
"""

from __future__ import annotations

import re

from omniemo.perception.evidence import Evidence
from omniemo.perception.face import DESCRIPTORS
from omniemo.perception.speech_emotion import MIN_SPEECH_SECONDS
from omniemo.reasoning.fusion import Fusion

MAX_SPANS = 3


def fmt_spans(spans, limit: int = MAX_SPANS) -> str:
    parts = [f"{a:.1f}-{b:.1f} s" for a, b in spans[:limit]]
    more = f" and {len(spans) - limit} more" if len(spans) > limit else ""
    return ", ".join(parts) + more


def _sentence(text: str, cues: list, spans=None) -> dict:
    return {"text": text, "cues": [c.id for c in cues], "spans": [list(s) for s in (spans or [])]}


def _absent(ev: Evidence, modality: str, text: str) -> list[dict] | None:
    """None when the modality is present; otherwise the sentence saying why it is missing ([] if not asked for)."""
    report = ev.modalities.get(modality)
    if report is not None and report.status == "present":
        return None
    if report is None or report.status == "skipped":
        return []
    return [{"text": f"{text} ({report.reason}).", "cues": [], "spans": [], "missing": modality}]


def still_image(ev: Evidence) -> bool:
    """One frame (a photograph): there is no moment to compare with and no movement, so no claim about either."""
    return ev.clip.get("num_frames") == 1


def face_sentences(ev: Evidence) -> list[dict]:
    missing = _absent(ev, "face", "No face could be read")
    if missing is not None:
        return missing
    out = []
    still = still_image(ev)
    expressions = sorted((c for c in ev.cues_of("face") if c.name.startswith("expression.")), key=lambda c: -c.value)
    top = expressions[0]
    name = top.name.split(".", 1)[1]
    # adapted to a set (``--adapt``): the sentence says so, and how
    face = f"The face, {top.detail['adapted']}," if top.detail.get("adapted") else "The face"
    text = f"{face} reads mostly as {name} (mean probability {top.value:.2f})"
    if top.spans and not still:
        text += f", the leading expression at {fmt_spans(top.spans)}"
    second = expressions[1]
    cited = [top]
    if second.value >= 0.15:
        text += f"; {second.name.split('.', 1)[1]} follows ({second.value:.2f})"
        cited.append(second)
    blurred = top.detail.get("blurred_frames", 0)
    if blurred:  # the outside face models read such faces near chance, so they weighed less there
        where = "the image" if still else f"{blurred} of {top.detail['frames_with_face']} frames"
        text += (f"; the face was blurred or small in {where}, where the outside expression models, near chance on"
                 " such faces, weigh less than omniemo's own")
    out.append(_sentence(text + ".", cited, [] if still else top.spans))
    if still:  # the brows or mouth are measured against the face's own calmer moments, which one image lacks
        return out
    active = [c for c in ev.cues_of("face") if c.name in DESCRIPTORS and c.spans and not c.name.startswith("head_")]
    active.sort(key=lambda c: -sum(b - a for a, b in c.spans))
    if active:
        parts = [f"{c.detail['active_means']} at {fmt_spans(c.spans, 2)}" for c in active[:3]]
        out.append(_sentence("Against the face's own calmer moments: " + "; ".join(parts) + ".", active[:3],
                             [s for c in active[:3] for s in c.spans[:2]]))
    else:
        calm = [c for c in ev.cues_of("face") if c.name in ("brow_raise", "brow_furrow", "lip_corner_pull", "mouth_opening")]
        if calm:
            out.append(_sentence("Brows, lip corners and mouth stay close to their resting positions throughout.", calm))
    head = [c for c in ev.cues_of("face") if c.name.startswith("head_") and c.spans]
    if head:
        out.append(_sentence(f"The head is {head[0].detail['active_means'].replace('head ', '')} at {fmt_spans(head[0].spans, 2)}.",
                             head[:1], head[0].spans[:2]))
    return out


def appearance_sentences(ev: Evidence) -> list[dict]:
    if not ev.present("appearance"):
        return []
    clothes, bright, colours = (ev.cue(f"appearance.{n}") for n in ("clothing_colours", "background_brightness", "background_colours"))
    parts, cited = [], []
    if clothes:
        parts.append(f"the person wears {' and '.join(clothes.value[:2])} (by colour; garments are not recognised)")
        cited.append(clothes)
    if bright:
        setting = f"the background is {bright.detail['words']}"
        if colours:
            setting += f" and mostly {' and '.join(colours.value[:2])}"
            cited.append(colours)
        parts.append(setting)
        cited.append(bright)
    return [_sentence(parts[0][0].upper() + parts[0][1:] + ("; " + "; ".join(parts[1:]) if len(parts) > 1 else "") + ".", cited)] if parts else []


def body_sentences(ev: Evidence) -> list[dict]:
    if not ev.present("body"):
        return []
    active = [c for c in ev.cues_of("body") if c.spans and "active_means" in c.detail]
    if active:
        parts = [f"{c.detail['active_means']} at {fmt_spans(c.spans, 2)}" for c in active[:3]]
        return [_sentence("Body: " + "; ".join(parts) + ".", active[:3], [s for c in active[:3] for s in c.spans[:2]])]
    if still_image(ev):
        return [_sentence("One still image: whether the body moves cannot be read.", ev.cues_of("body")[:1])]
    energy = ev.cue("body.motion_energy")
    return [_sentence("The body stays mostly still: no gesturing, hand-to-face or lean stood out.",
                      [c for c in ev.cues_of("body") if c.id != "body.neck_length"][:4] or [energy])]


def _level(value: float, low: float, high: float, words: tuple[str, str, str]) -> str:
    return words[0] if value < low else words[2] if value > high else words[1]


def voice_sentences(ev: Evidence) -> list[dict]:
    missing = _absent(ev, "voice", "No voice evidence")
    if missing is not None:
        return missing
    out = []
    speech, pauses = ev.cue("voice.speech"), ev.cue("voice.pauses")
    pitch, prange, rate = ev.cue("voice.pitch_level"), ev.cue("voice.pitch_range"), ev.cue("voice.speaking_rate")
    lvar = ev.cue("voice.loudness_variability")
    if speech.value < MIN_SPEECH_SECONDS and ev.modalities["voice"].summary.get("no_emotion"):
        # a burst this short (a tone's onset, a cough) is no voice to describe: its pitch or pace would be noise
        return [_sentence(f"Only {speech.value:.1f} s sounded like speech ({fmt_spans(speech.spans)}): too little to "
                          f"describe the voice or read an emotion from it.", [speech], speech.spans)]
    parts, cited = [f"Speech fills {speech.value:.1f} s ({fmt_spans(speech.spans)})"], [speech]
    if pitch:
        parts.append(f"with a median pitch of {pitch.value:.0f} Hz")
        cited.append(pitch)
    if prange:
        parts.append(f"a {_level(prange.value, 4, 9, ('narrow', 'moderate', 'wide'))} pitch range of {prange.value:.1f} semitones")
        cited.append(prange)
    if rate:
        parts.append(f"{_level(rate.value, 3, 5.5, ('slow', 'moderate', 'fast'))} delivery at {rate.value:.1f} syllables per second")
        cited.append(rate)
    out.append(_sentence(", ".join(parts) + ".", cited, speech.spans))
    more, cited = [], [pauses]
    if pauses.value:
        more.append(f"{pauses.value} pause{'s' if pauses.value != 1 else ''} (longest {pauses.detail['longest_seconds']:.1f} s)")
    else:
        more.append("no pauses")
    if lvar:
        more.append(f"{_level(lvar.value, 0.5, 0.9, ('even', 'varied', 'strongly varying'))} loudness (variation {lvar.value:.2f})")
        cited.append(lvar)
    stretches = ev.cue("voice.loud_stretches")
    if stretches:
        more.append(f"louder bursts at {fmt_spans(stretches.spans, 2)}")
        cited.append(stretches)
    out.append(_sentence("The voice has " + ", ".join(more) + ".", cited, (stretches.spans[:2] if stretches else [])))
    emotion = ev.cue("voice.emotion")
    if emotion:
        probs = sorted(emotion.detail["probabilities"].items(), key=lambda kv: -kv[1])
        variant = emotion.detail.get("variant", "single clip")
        # read against the speaker's or the recording set's own mean: the sentence says so
        model = "The voice model" if variant == "single clip" else f"The voice model, {variant},"
        text = f"{model} hears {probs[0][0]} ({probs[0][1]:.2f})"
        if probs[1][1] >= 0.15:
            text += f", then {probs[1][0]} ({probs[1][1]:.2f})"
        segments = emotion.detail.get("segments", [])
        if len(segments) > 1:
            text += f", over {len(segments)} utterances"
        if emotion.detail.get("damped"):
            text += "; with this little speech its confidence is lowered"
        out.append(_sentence(text + ".", [emotion], emotion.spans))
    elif ev.modalities["voice"].summary.get("no_emotion"):
        out.append(_sentence(f"The {speech.value:.1f} s of speech is too little to read an emotion from the voice.",
                             [speech], speech.spans))
    return out


# Below it Whisper named the wrong language for 12 of 31 URDU and English clips, above it for 2 of 153
# (Hindi counted right for Urdu: the same spoken language)
UNSURE_LANGUAGE = 0.5


def words_sentences(ev: Evidence) -> list[dict]:
    missing = _absent(ev, "words", "No words to read")
    if missing is not None:
        return missing
    transcript, sentiment = ev.cue("words.transcript"), ev.cue("words.sentiment")
    detail = transcript.detail
    if detail.get("language") in (None, "en"):
        text = f'The words are "{transcript.value}" ({fmt_spans(transcript.spans)})'
    else:
        certainty = "" if detail["language_probability"] >= UNSURE_LANGUAGE else ", an uncertain guess of the language"
        text = (f'The words, in {detail["language_name"]} (detected with probability {detail["language_probability"]:.2f}'
                f'{certainty}), are "{transcript.value}" ({fmt_spans(transcript.spans)})')
        if detail.get("translation"):
            text += f'; Whisper\'s English translation reads "{detail["translation"]}"'
    cited = [transcript]
    if sentiment is None:
        return [_sentence(text + "; with no English translation, their tone was not scored.", cited, transcript.spans)]
    emotions = [c for c in ev.cues_of("words") if c.name.startswith("emotion.")]
    tone = "positive" if sentiment.value >= 0.3 else "negative" if sentiment.value <= -0.3 else "about neutral"
    of = "" if detail.get("language") in (None, "en") else " (read from the translation)"
    text += f"; their tone{of} is {tone} (sentiment {sentiment.value:.2f})"
    cited.append(sentiment)
    if emotions:
        hits = [f"{c.name.split('.', 1)[1]} ({', '.join(c.detail['words'])})" for c in emotions[:3]]
        text += f", with emotion words for {'; '.join(hits)}"
        cited += emotions[:3]
    else:
        text += ", with no emotion words"
    return [_sentence(text + ".", cited, transcript.spans)]


def combine_sentence(ev: Evidence, fusion: Fusion) -> dict:
    """The closing judgement: what each modality favours, whether they agree, and the fused answer."""
    favoured = {m: max(d, key=d.get) for m, d in fusion.per_modality.items()}
    expressions = sorted((c for c in ev.cues_of("face") if c.name.startswith("expression.")), key=lambda c: -c.value)
    cue_for = {"face": expressions[:1],
               "voice": [c for c in (ev.cue("voice.emotion"),) if c],
               "text": [c for c in (ev.cue("words.sentiment"),) if c]}
    cited = [c for m in favoured for c in cue_for.get(m, [])]
    answer = fusion.label
    if not favoured:
        return {"text": f"With no face, voice or words to weigh, nothing favours any emotion; the answer {answer} "
                        f"is a guess.", "cues": [], "spans": []}
    agree = [m for m, lab in favoured.items() if lab == answer]
    disagree = [f"{m} leans to {lab}" for m, lab in favoured.items() if lab != answer]
    text = (f"{' and '.join(agree).capitalize()} point{'s' if len(agree) == 1 else ''} to {answer}" if agree else
            f"No single modality leads to {answer}")
    if disagree:
        text += f", while {', '.join(disagree)}"
    strongest = max(fusion.contributions, key=fusion.contributions.get) if fusion.contributions else None
    text += f"; weighed together the answer is {answer} with probability {fusion.probabilities[answer]:.2f}"
    if strongest and len(fusion.contributions) > 1:
        text += f", the {strongest} moving it most"
    # the one number that is fusion's, not a cue's: kept with the sentence so that verify can check it
    return {"text": text + ".", "cues": [c.id for c in cited], "spans": [],
            "fused": {"label": answer, "probability": fusion.probabilities[answer]}}


def build_reasoning(ev: Evidence, fusion: Fusion) -> list[dict]:
    sentences = (face_sentences(ev) + appearance_sentences(ev) + body_sentences(ev) + voice_sentences(ev)
                 + words_sentences(ev))
    sentences.append(combine_sentence(ev, fusion))
    return sentences


def reasoning_text(sentences: list[dict]) -> str:
    return " ".join(s["text"] for s in sentences)


_SPAN_RE = re.compile(r"(\d+\.\d)-(\d+\.\d) s")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")


def _cue_numbers(cue) -> list[float]:
    values = []

    def walk(v):
        if isinstance(v, bool):
            return
        if isinstance(v, (int, float)):
            values.append(float(v))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(cue.value)
    walk(cue.detail)
    walk(cue.confidence)
    walk(cue.spans)
    values.append(float(len(cue.spans)))
    return values


def verify(sentences: list[dict], ev: Evidence, fusion: Fusion | None = None) -> list[str]:
    """Problems found (empty when every claim is grounded).

    Each sentence must cite cues that exist, and every span and number it prints must come from them. The
    closing sentence's fused probability is checked against the fused answer it records; give ``fusion`` to
    also check that record against the fusion itself.
    """
    problems = []
    for i, s in enumerate(sentences):
        missing_modality = s.get("missing")
        cues = [ev.cue(cid) for cid in s["cues"]]
        if any(c is None for c in cues):
            problems.append(f"sentence {i} cites a cue not in the evidence: {s['cues']}")
            continue
        if not cues and not missing_modality and not s["text"].startswith("With no face"):
            problems.append(f"sentence {i} cites no cue: {s['text']!r}")
            continue
        # formatted as the text formats them (numpy's round differs from Python's on halves such as 0.15)
        known_spans = {(f"{float(a):.1f}", f"{float(b):.1f}") for c in cues for a, b in c.spans}
        text_wo_spans = s["text"]
        for a, b in _SPAN_RE.findall(s["text"]):
            if (a, b) not in known_spans:
                problems.append(f"sentence {i} states a span {a}-{b} s that no cited cue has")
        text_wo_spans = _SPAN_RE.sub(" ", text_wo_spans)
        text_wo_spans = re.sub(r'"[^"]*"', " ", text_wo_spans)  # quoted transcript
        allowed = [v for c in cues for v in _cue_numbers(c)]
        fused = s.get("fused")
        if fused is not None:
            if fusion is not None and (fusion.label != fused["label"]
                                       or abs(fusion.probabilities[fusion.label] - fused["probability"]) > 1e-9):
                problems.append(f"sentence {i} records the fused answer {fused}, not what the fusion gave")
            allowed.append(float(fused["probability"]))
        for token in _NUMBER_RE.findall(text_wo_spans):
            number = float(token)
            decimals = len(token.split(".")[1]) if "." in token else 0
            tolerance = 0.5 * 10 ** -decimals + 1e-9
            if not any(abs(number - v) <= tolerance for v in allowed):
                problems.append(f"sentence {i} states {token}, which no cited cue holds")
    return problems
