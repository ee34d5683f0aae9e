"""Recipe: fit the fusion weights of the cue pipeline on labelled clips, and write them with their provenance.

Fusion is log-linear pooling, ``log p(label) = sum_m w_m log p_m(label) + const``, so each weight is an
inverse temperature of its modality inside the product. The recipe reads `omniemo eval` runs of the cue
pipeline (each row keeps every modality's own distribution over the run's label set, under "modalities")
and chooses the weights that minimise the negative log-likelihood of the true labels, with a Gaussian prior
around the starting weights (sd ``prior_sd``), so a modality seen in a handful of clips moves only a little.

A run can be limited to some modalities (``RUN:face``): use it where a modality's model was trained on
those very speakers (its probabilities there would be overconfident and would pull its weight up).
Modalities not named in ``fit`` keep their current weights but still take part in the product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omniemo import files
from omniemo.eval.metrics import expected_calibration_error, score
from omniemo.reasoning.fusion import MIN_FLOOR, PRIOR_FLOORS, PRIOR_WEIGHTS, WEIGHTS_FILE, with_floor

MODALITIES = tuple(PRIOR_WEIGHTS)  # face, voice, text


@dataclass
class FusionRow:
    run: str
    label: str
    labels: tuple[str, ...]
    dists: dict[str, np.ndarray]  # modality -> distribution over ``labels``


@dataclass
class FusionFitConfig:
    runs: list[str]  # eval run folders, each optionally ":face,voice" to use only those modalities
    fit: tuple[str, ...] = ("face", "voice")  # weights to fit; the others stay at their start values
    start: dict[str, float] = field(default_factory=dict)  # start values / prior means (default: PRIOR_WEIGHTS)
    prior_sd: float = 1.0  # Gaussian prior sd around the start values, in weight units
    bounds: tuple[float, float] = (0.0, 4.0)
    out_dir: Path | None = None  # where fusion_weights.json goes (None: not written)
    notes: list[str] = field(default_factory=list)  # why the data is what it is; printed in the card


def parse_run(spec: str) -> tuple[Path, tuple[str, ...]]:
    """``runs/x`` or ``runs/x:face,voice`` -> (folder, modalities kept)."""
    folder, _, kept = spec.partition(":")
    modalities = tuple(m for m in kept.split(",") if m) if kept else MODALITIES
    unknown = set(modalities) - set(MODALITIES)
    if unknown:
        raise ValueError(f"{spec}: unknown modality {sorted(unknown)} (choose from {', '.join(MODALITIES)})")
    return Path(folder), modalities


def read_rows(spec: str) -> tuple[list[FusionRow], dict]:
    """The usable rows of one eval run, and counts of what was skipped and why."""
    folder, kept = parse_run(spec)
    predictions = folder / "predictions.jsonl"
    if not predictions.is_file():
        raise ValueError(f"{folder}: no predictions.jsonl (run `omniemo eval ... --out {folder}` first)")
    rows, skipped = [], {"error": 0, "no modalities (not a cue-pipeline run?)": 0, "none of the kept modalities": 0}
    for line in predictions.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "error" in row:
            skipped["error"] += 1
            continue
        if "modalities" not in row:
            skipped["no modalities (not a cue-pipeline run?)"] += 1
            continue
        dists = {m: d for m, d in row["modalities"].items() if m in kept}
        if not dists:
            skipped["none of the kept modalities"] += 1
            continue
        labels = tuple(next(iter(dists.values())))
        rows.append(FusionRow(str(folder), row["label"], labels,
                              {m: np.array([d[lab] for lab in labels]) for m, d in dists.items()}))
    return rows, {k: v for k, v in skipped.items() if v}


def fused_log_probs(row: FusionRow, weights: dict[str, float], floors: dict[str, float]) -> np.ndarray:
    z = sum(weights[m] * np.log(with_floor(d, floors[m])) for m, d in row.dists.items())
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def nll(rows: list[FusionRow], weights: dict[str, float], floors: dict[str, float]) -> float:
    return float(-np.mean([fused_log_probs(r, weights, floors)[r.labels.index(r.label)] for r in rows]))


def summary(rows: list[FusionRow], weights: dict[str, float], floors: dict[str, float]) -> dict:
    """NLL, accuracy, UAR and expected calibration error (10 bins) of the fused answer."""
    logp = [fused_log_probs(r, weights, floors) for r in rows]
    truth = [r.label for r in rows]
    pred = [r.labels[int(np.argmax(lp))] for r, lp in zip(rows, logp)]
    confidence = np.array([float(np.exp(lp.max())) for lp in logp])
    correct = np.array([t == p for t, p in zip(truth, pred)])
    ece = expected_calibration_error(confidence, correct)
    # runs may answer in different label sets: score over their union (UAR: mean recall of the classes present)
    scores = score(truth, pred, ",".join(sorted({lab for r in rows for lab in r.labels})), bootstrap=0)
    return {"n": len(rows), "nll": round(nll(rows, weights, floors), 4), "accuracy": round(100 * scores.war, 2),
            "uar": round(100 * scores.uar, 2), "ece": round(100 * float(ece), 2)}


def fit_weights(rows: list[FusionRow], fit: tuple[str, ...], start: dict[str, float], prior_sd: float = 1.0,
                bounds: tuple[float, float] = (0.0, 4.0), start_floors: dict[str, float] | None = None,
                floor_sd: float = 0.05) -> tuple[dict[str, float], dict[str, float]]:
    """MAP weights and uniform floors: summed NLL + sum_m (w_m - start_m)^2 / (2 prior_sd^2)
    + sum_m (f_m - start_floor_m)^2 / (2 floor_sd^2), over the modalities in ``fit``; floors in [MIN_FLOOR, 0.5]."""
    from scipy.optimize import minimize

    start_floors = {**PRIOR_FLOORS, **(start_floors or {})}
    present = [m for m in fit if any(m in r.dists for r in rows)]
    if not present:
        return dict(start), dict(start_floors)

    def unpack(values):
        k = len(present)
        return ({**start, **dict(zip(present, values[:k]))}, {**start_floors, **dict(zip(present, values[k:]))})

    def objective(values):
        weights, floors = unpack(values)
        prior = sum((weights[m] - start[m]) ** 2 for m in present) / (2 * prior_sd ** 2)
        prior += sum((floors[m] - start_floors[m]) ** 2 for m in present) / (2 * floor_sd ** 2)
        return nll(rows, weights, floors) * len(rows) + prior

    x0 = [start[m] for m in present] + [max(MIN_FLOOR, start_floors[m]) for m in present]
    result = minimize(objective, x0, method="L-BFGS-B", bounds=[bounds] * len(present) + [(MIN_FLOOR, 0.5)] * len(present))
    weights, floors = unpack(result.x)
    return ({m: round(float(v), 3) for m, v in weights.items()}, {m: round(float(v), 3) for m, v in floors.items()})


def train(config: FusionFitConfig) -> dict:
    """Fit, report before/after per run and overall, and write ``fusion_weights.json`` if ``out_dir`` is set."""
    start = {**PRIOR_WEIGHTS, **config.start}
    unknown = set(config.fit) - set(MODALITIES)
    if unknown:
        raise ValueError(f"cannot fit {sorted(unknown)}: the modalities are {', '.join(MODALITIES)}")
    by_run, skipped = {}, {}
    for spec in config.runs:
        rows, skip = read_rows(spec)
        if not rows:
            raise ValueError(f"{spec}: no usable rows ({skip or 'empty run'})")
        by_run[spec], skipped[spec] = rows, skip
    rows = [r for rs in by_run.values() for r in rs]
    weights, floors = fit_weights(rows, config.fit, start, config.prior_sd, config.bounds)
    counts = {m: sum(m in r.dists for r in rows) for m in MODALITIES}
    report = {
        "weights": weights, "floors": floors, "start": start, "start_floors": dict(PRIOR_FLOORS),
        "fitted": [m for m in config.fit if counts[m]],
        "prior_sd": config.prior_sd, "clips_per_modality": counts, "notes": list(config.notes),
        "runs": {spec: {"kept": list(parse_run(spec)[1]), "skipped": skipped[spec],
                        "before": summary(rs, start, PRIOR_FLOORS), "after": summary(rs, weights, floors)}
                 for spec, rs in by_run.items()},
        "all": {"before": summary(rows, start, PRIOR_FLOORS), "after": summary(rows, weights, floors)},
    }
    if config.out_dir:
        out = Path(config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files.write_text(out / WEIGHTS_FILE, json.dumps(report, indent=2) + "\n")
        files.write_text(out / "FUSION_CARD.md", card(report))
    return report


def card(report: dict) -> str:
    """The fit as a short model card: method, data, weights, scores before and after."""
    def score_row(name, r):
        b, a = r["before"], r["after"]
        return (f"| {name} | {a['n']} | {b['nll']:.3f} -> {a['nll']:.3f} | {b['uar']:.1f} -> {a['uar']:.1f} | "
                f"{b['ece']:.1f} -> {a['ece']:.1f} |")

    lines = [
        "# Fusion weights of the cue pipeline",
        "",
        "Fusion pools the modalities log-linearly, `log p(label) = sum_m w_m log p_m(label) + const`: each weight is",
        "an inverse temperature of its modality inside the product. `omniemo train fusion` chose the weights below",
        "by maximum a posteriori on `omniemo eval` runs of labelled clips: the summed negative log-likelihood of the",
        f"true labels plus a Gaussian prior (sd {report['prior_sd']}) around the prior weights. Modalities not fitted keep",
        "their prior weight" + ("." if report["fitted"] else
                                 " (none was fitted in this run: the runs score the shipped weights; the notes say why)."),
        "",
        "Each modality's distribution is first mixed with a uniform floor, `(1 - f) p + f / K`, so that no modality's",
        "near-zero probability can veto a label the others support; the floors are fitted the same way (prior sd",
        "0.05 around the prior floors " + ", ".join(f"{m} {f}" for m, f in PRIOR_FLOORS.items())
        + f"; never below {MIN_FLOOR}). A floor f caps what a modality's near-zero can cost a label at about",
        "w log(1/f).",
        "",
        "| modality | prior weight | shipped weight | floor | clips in the fit |",
        "|---|---|---|---|---|",
        *[f"| {m} | {report['start'][m]} | {w} | {report['floors'][m]} | {_clips(report, m)} |"
          for m, w in report["weights"].items()],
        "",
        "| run (modalities used) | clips | NLL before -> after | UAR before -> after | ECE % before -> after |",
        "|---|---|---|---|---|",
        *[score_row(name, r) for name, r in report["runs"].items()],
        score_row("all", report["all"]),
        "",
    ]
    if report.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in report["notes"]], ""]
    return "\n".join(lines)


FEW_CLIPS = 50


def _clips(report: dict, modality: str) -> str:
    if modality not in report["fitted"]:
        return "not fitted"
    n = report["clips_per_modality"][modality]
    return f"{n} (few: weak evidence, the prior holds much of it)" if n < FEW_CLIPS else str(n)
