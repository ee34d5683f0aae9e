"""A single self-contained HTML page for one analysed clip: answer, reasoning with its cues, key frames with
face boxes, expression timeline, pitch and loudness with speech spans, transcript. Images are inline PNGs."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.perception.evidence import spans_text, value_text
from omniemo.prediction import Prediction

AI_ACT = ("The EU AI Act prohibits emotion recognition in workplaces and education institutions, except for "
          "medical or safety reasons. This analysis ran on this device; it infers expressed emotion from "
          "observable cues and can be wrong.")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _frame_png(frame: np.ndarray, box) -> str:
    import cv2

    image = np.ascontiguousarray(frame.copy())
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), (40, 220, 90), max(2, image.shape[1] // 240))
    scale = 320 / image.shape[1]
    image = cv2.resize(image, (320, max(2, int(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    return plt


def _expression_plot(face) -> str | None:
    plt = _pyplot()
    times = np.array(face.series["times"], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 2.6))
    for key, values in face.series.items():
        if key.startswith("expression."):
            ax.plot(times, np.array(values, dtype=float), label=key.split(".", 1)[1], linewidth=1.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(-0.04, 1.04)  # lines lying at exactly 0 or 1 stay visible above the frame
    ax.legend(ncol=7, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.22), frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def _voice_plot(voice, speech_spans) -> str | None:
    plt = _pyplot()
    series = voice.series
    if not series.get("times"):
        return None
    t = np.array(series["times"], dtype=float)
    pitch = np.array(series["pitch_hz"], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 2.6))
    for a, b in speech_spans:
        ax.axvspan(a, b, color="#cfe8ff", alpha=0.7, linewidth=0)
    if np.isfinite(pitch).any():
        ax.plot(t, pitch, color="#c0392b", linewidth=1.8, label="pitch (Hz)")
        low, high = np.nanmin(pitch), np.nanmax(pitch)
        ax.set_ylim(low - 0.08 * (high - low) - 5, high + 0.08 * (high - low) + 5)
    else:  # an empty pitch axis (-0.04 to 0.04 Hz) would look like a measurement: say what happened instead
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no voiced speech: no pitch", transform=ax.transAxes, ha="center", va="center",
                color="#c0392b")
    ax.set_ylabel("pitch (Hz)", color="#c0392b")
    ax.set_xlabel("time (s); blue: speech")
    ax.set_xlim(0, max(float(t[-1]) if t.size else 1.0, 1e-3))
    ax2 = ax.twinx()
    ax2.plot(t, np.array(series["loudness"], dtype=float), color="#2c3e50", linewidth=1.0, alpha=0.8)
    ax2.set_ylabel("loudness", color="#2c3e50")
    ax.grid(alpha=0.3)
    return _png(fig)


def cue_summary(ev, cue_id: str) -> str:
    """What a cue chip shows on hover: value, unit, time spans, model."""
    cue = ev.cue(cue_id) if ev is not None else None
    if cue is None:
        return cue_id
    spans = spans_text(cue.spans)
    confidence = f"; confidence {cue.confidence:.2f}" if cue.confidence is not None else ""
    return f"{cue.name} = {value_text(cue.value)} {cue.unit}" + (f" at {spans}" if spans else "") + f"{confidence} ({cue.model})"


def render_html(prediction: Prediction) -> str:
    ev = prediction.evidence
    e = html.escape
    parts = [f"<h1>{e(Path(prediction.path).name)}</h1>",
             f"<p class='answer'>Answer: <b>{e(prediction.label)}</b></p>", "<div class='bars'>"]
    for label, p in sorted(prediction.probabilities.items(), key=lambda kv: -kv[1]):
        parts.append(f"<div class='bar'><span>{e(label)}</span><i style='width:{100 * p:.1f}%'></i><em>{p:.2f}</em></div>")
    parts.append("</div>")
    if prediction.contributions:
        parts.append("<p class='small'>Contribution of each modality to the answer's probability (leave one out): "
                     + ", ".join(f"{e(m)} {v:+.2f}" for m, v in prediction.contributions.items()) + "</p>")
    parts.append("<h2>Reasoning</h2><ol class='reasoning'>")
    for s in prediction.reasoning:
        refs = "".join(f"<code tabindex='0' title='{e(cue_summary(ev, c))}'>{e(c)}</code>" for c in s["cues"])
        parts.append(f"<li>{e(s['text'])}<div class='refs'>{refs}</div></li>")
    parts.append("</ol>")
    parts.append(f"<pre class='output'>{e(prediction.output)}</pre>")
    if ev is not None:
        keyframes = getattr(ev, "keyframes", None) or []
        if keyframes:
            parts.append("<h2>Key frames</h2><div class='frames'>")
            for t, frame, box in keyframes:
                parts.append(f"<figure><img alt='frame at {t:.1f} s' src='{_frame_png(frame, box)}'><figcaption>{t:.2f} s"
                             f"{'' if box else ' (no face)'}</figcaption></figure>")
            parts.append("</div>")
        if ev.present("face"):
            parts.append(f"<h2>Facial expression over time</h2><img class='plot' alt='expression timeline' src='{_expression_plot(ev.modalities['face'])}'>")
        if ev.present("voice"):
            speech = ev.cue("voice.speech").spans
            plot = _voice_plot(ev.modalities["voice"], speech)
            if plot:
                parts.append(f"<h2>Voice: pitch and loudness</h2><img class='plot' alt='pitch and loudness' src='{plot}'>")
        if ev.present("words"):
            ws = ev.modalities["words"].summary["words"]
            parts.append("<h2>Transcript</h2><p class='transcript'>" + " ".join(
                f"<span title='{w['start']:.2f}-{w['end']:.2f} s'>{e(w['word'])}</span>" for w in ws) + "</p>")
        parts.append("<h2>Modalities</h2><table><tr><th>modality</th><th>status</th><th>model / reason</th></tr>")
        for name, r in ev.modalities.items():
            parts.append(f"<tr><td>{e(name)}</td><td>{e(r.status)}</td><td>{e(r.reason or r.model or '')}</td></tr>")
        parts.append("</table>")
    if prediction.timeline:
        parts.append("<h2>Timeline</h2><table><tr><th>from</th><th>to</th><th>emotion</th><th>modalities</th><th>words</th></tr>")
        for row in prediction.timeline:
            parts.append(f"<tr><td>{row['start']:.1f} s</td><td>{row['end']:.1f} s</td><td>{e(row['label'] or '-')}</td>"
                         f"<td>{e(', '.join(row['modalities']))}</td><td>{e(row['words'])}</td></tr>")
        parts.append("</table>")
    parts.append(f"<p class='note'>{e(AI_ACT)}</p>")
    body = "\n".join(parts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>omniemo: {e(Path(prediction.path).name)}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; max-width: 980px; margin: 24px auto; padding: 0 16px; color: #1d2733; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }} h2 {{ font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dde3ea; }}
.answer {{ font-size: 20px; }} .small {{ color: #55606d; font-size: 13px; }}
.bars {{ max-width: 520px; }} .bar {{ display: flex; align-items: center; gap: 8px; margin: 3px 0; }}
.bar span {{ width: 110px; }} .bar i {{ display: block; height: 12px; background: #3a7bd5; border-radius: 3px; }}
.bar em {{ font-style: normal; color: #55606d; font-size: 13px; }}
.reasoning li {{ margin: 6px 0; }} .refs code {{ background: #eef3f8; margin-right: 4px; padding: 0 4px; font-size: 12px; border-radius: 3px; cursor: help; position: relative; }}
.refs code:hover::after, .refs code:focus::after {{ content: attr(title); position: absolute; left: 0; top: 1.6em; z-index: 2; width: max-content; max-width: 460px; white-space: normal; background: #1d2733; color: #fff; padding: 4px 8px; border-radius: 4px; font-size: 12px; }}
.output {{ white-space: pre-wrap; background: #f6f8fa; padding: 10px; border-radius: 6px; font-size: 13px; }}
.frames {{ display: flex; flex-wrap: wrap; gap: 10px; }} figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #55606d; }}
.plot {{ max-width: 100%; }} table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #dde3ea; padding: 4px 8px; font-size: 13px; text-align: left; }}
.note {{ margin-top: 30px; font-size: 12px; color: #7a4b00; background: #fff6e0; padding: 8px; border-radius: 6px; }}
</style></head><body>
{body}
</body></html>
"""


def write_report(prediction: Prediction, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(path, render_html(prediction))
    return path
