"""What each voice-model ingredient does on corpora it never heard: the README's ingredient table, later parts.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_voice_ingredients.py [--cache bench/out/voice-ingredients.npz]

Protocol (the speech-emotion recipe's selection criterion): train on three of RAVDESS, CREMA-D, ASED and URDU
(all their speakers, each clip plus its first augmented copy unless said otherwise), test single clips of the
fourth corpus's non-test speakers; UAR over the held-out corpus's labels (RAVDESS over the 6 classes the others
can teach). Each variant changes one thing from the shipped design (Whisper base layers 2-4 mean-pooled +
eGeMAPS, standardised, one masked linear softmax). "degraded" variants test on the held-out clips' augmented
copies instead (another room, microphone, noise, codec).

``--one-corpus-classes``: how classes that one training corpus alone teaches (surprise and calm: RAVDESS) are
read on corpora it never heard.

``--listeners``: held-out CREMA-D beside people: the crowd's majority vote from the voice alone (CREMA-D's
summaryTable.csv), both against the acted labels.

``--adaptation``: how the `corpus` variant (every corpus centred on its own mean) holds up when its
assumptions weaken: one emotion making half of the held-out clips (each emotion in turn), and the mean taken
from only 5-50 random clips (10 draws each).

The first run extracts features of every clip and its augmented copy (25-45 min on 2 cores) into --cache:
the feature blocks of ``BLOCKS``. Results: bench/out/voice_ingredients.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
ROOTS = {"ravdess": DATA / "ravdess-speech-16k", "cremad": DATA / "crema-d-audio-16k", "ased": DATA / "ased-amharic",
         "urdu": DATA / "urdu"}
FRAME_NORMALISED = (2, 3, 4)
# The cache's feature blocks, in order: (name, width). m: Whisper base layer means (states 0-6); n: means of
# frame-normalised states; s: standard deviations; c: means after channel normalisation of the log-mel (each
# band's mean over the utterance replaced by the training speech's, removing a microphone's or room's colour);
# t: Whisper tiny.en state means (a second encoder); eg: eGeMAPS.
BLOCKS = ([(f"m{i}", 512) for i in range(7)] + [(f"n{i}", 512) for i in FRAME_NORMALISED]
          + [(f"s{i}", 512) for i in (2, 3, 4)] + [(f"c{i}", 512) for i in (2, 3, 4)]
          + [(f"t{i}", 384) for i in range(5)] + [("eg", 88)])


def utterance_features(audio: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Every block of ``BLOCKS`` for one clip, concatenated."""
    from omniemo.perception.models import whisper_encoder
    from omniemo.perception.speech_emotion import ENCODER, SAMPLE_RATE, _egemaps, log_mel, prepare
    from omniemo.perception.voice import speech_spans

    speech = prepare(audio, speech_spans(audio))
    mel = log_mel(speech)
    states = whisper_encoder(ENCODER).hidden_states(mel)
    normalised = [((states[i] - states[i].mean(1, keepdims=True)) / (states[i].std(1, keepdims=True) + 1e-6)).mean(0)
                  for i in FRAME_NORMALISED]
    levelled = (mel - mel.mean(axis=1, keepdims=True) + reference[:, None]).astype(np.float32)
    channel = whisper_encoder(ENCODER).hidden_states(levelled, upto=4)
    tiny = whisper_encoder("tiny.en").hidden_states(mel, upto=4)
    egemaps = _egemaps().process_signal(speech, SAMPLE_RATE).to_numpy()[0]
    return np.concatenate([s.mean(axis=0) for s in states] + normalised + [states[i].std(axis=0) for i in (2, 3, 4)]
                          + [channel[i].mean(axis=0) for i in (2, 3, 4)] + [s.mean(axis=0) for s in tiny]
                          + [egemaps]).astype(np.float32)


def reference_mel(items, clips: int = 400) -> np.ndarray:
    """The training speech's mean log-mel per band (a seeded sample of clips): channel normalisation's target."""
    from omniemo.media import load_clip
    from omniemo.perception.speech_emotion import log_mel, prepare
    from omniemo.perception.voice import speech_spans

    means = []
    for i in np.random.default_rng(0).choice(len(items), min(clips, len(items)), replace=False):
        audio = load_clip(items[i].path, sampling=None).audio
        means.append(log_mel(prepare(audio, speech_spans(audio))).mean(axis=1))
    return np.mean(means, axis=0).astype(np.float32)


def _clip(job):
    path, key, reference = job
    from omniemo.media import load_clip
    from omniemo.train.audio_augment import augment
    from omniemo.train.speech_emotion import augment_seed

    audio = load_clip(path, sampling=None).audio
    return utterance_features(audio, reference), utterance_features(augment(audio, augment_seed(key, 1, 0)), reference)


def load_features(items, cache: Path):
    if cache.exists():
        with np.load(cache) as stored:
            if list(stored["keys"]) == [it.key for it in items] and stored["clean"].shape[1] == sum(w for _, w in BLOCKS):
                return stored["clean"].astype(np.float64), stored["aug"].astype(np.float64)
    reference = reference_mel(items)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        pairs = list(pool.map(_clip, [(it.path, it.key, reference) for it in items], chunksize=8))
    from omniemo import files

    clean, aug = np.vstack([p[0] for p in pairs]), np.vstack([p[1] for p in pairs])
    cache.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(cache) as temp, open(temp, "wb") as handle:  # a stopped run leaves no half cache
        np.savez(handle, keys=np.array([it.key for it in items]), clean=clean, aug=aug)
    return clean.astype(np.float64), aug.astype(np.float64)


def columns(name: str) -> slice:
    """The columns of one of ``BLOCKS`` in the cache."""
    start = 0
    for block, width in BLOCKS:
        if block == name:
            return slice(start, start + width)
        start += width
    raise KeyError(name)


class Protocol:
    def __init__(self, items, clean, aug):
        from omniemo.labels import get_labelset
        from omniemo.perception.speech_emotion import LABELS

        self.labels, self.get_labelset = LABELS, get_labelset
        self.clean, self.aug = clean, aug
        self.paths = [it.path for it in items]
        self.corpus = np.array([it.corpus for it in items])
        self.split = np.array([it.split for it in items])
        self.y = np.array([LABELS.index(it.label) for it in items])
        self.allowed = np.array([[lab in get_labelset(it.corpus).labels for lab in LABELS] for it in items])

    def run(self, names=("m2", "m3", "m4", "eg"), classifier="linear", aug_weight=1.0, degraded=False, l2=0.05,
            block_norm=False, balanced_stats=False, corpus_directions=0, shrinkage=0.6, worst_corpus_rounds=0,
            pca=0, corpus_centred=False, test_time_copy=False, centred_training=False, subset_heads=False,
            corpus_scaled=False, transferred_bias=False, no_augmentation_head=0.0, words=False) -> dict:
        from omniemo.perception.expression import log_softmax
        from omniemo.train.speech_emotion import CORPORA, balanced_weights, by_group, fit_masked_softmax

        def view(x):
            parts = [x[:, columns(n)] for n in names]
            if block_norm:
                parts = [p if n == "eg" else p / np.linalg.norm(p, axis=1, keepdims=True) for p, n in zip(parts, names)]
            return np.hstack(parts)

        xc, xa = view(self.clean), view(self.aug)
        out, scores, trained = {}, {}, {}
        for held in CORPORA:
            train = self.corpus != held
            test = (self.corpus == held) & (self.split != "test")
            n = int(train.sum())
            stack = np.vstack([xc[train], xa[train]])
            cc, yy = np.tile(self.corpus[train], 2), np.tile(self.y[train], 2)
            allowed = np.tile(self.allowed[train], (2, 1))
            if balanced_stats:
                mean = np.mean([stack[cc == c].mean(0) for c in np.unique(cc)], axis=0)
                std = np.sqrt(np.mean([stack[cc == c].var(0) for c in np.unique(cc)], axis=0)) + 1e-6
            else:
                mean, std = stack.mean(0), stack.std(0) + 1e-6
            z = (stack - mean) / std
            zt = ((xa if degraded else xc)[test] - mean) / std
            if corpus_centred:  # each training corpus, and the held-out one, on its own mean (the `corpus` variant)
                z, zt = by_group(stack, cc, spread=False) / std, (zt - zt.mean(axis=0))
            if corpus_scaled:  # the same, each corpus also on its own spread (z-scored per corpus)
                test_x = (xa if degraded else xc)[test]
                z, zt = by_group(stack, cc), (test_x - test_x.mean(axis=0)) / (test_x.std(axis=0) + 1e-6)
            if centred_training:  # trained corpus-centred; one clip read against the training corpora's mean of means
                centre = np.mean([stack[cc == c].mean(axis=0) for c in np.unique(cc)], axis=0)
                z, zt = by_group(stack, cc, spread=False) / std, ((xa if degraded else xc)[test] - centre) / std
            project = _projector(z, cc, yy, corpus_directions)
            weights = balanced_weights(cc, yy) * np.r_[np.ones(n), np.full(n, aug_weight)]
            keep = weights > 0
            zt = project(zt)
            if pca:  # the main directions of the training features only
                basis = np.linalg.svd(project(z)[keep], full_matrices=False)[2][:pca].T
                z, zt = (project(z) @ basis), zt @ basis
                project = lambda a: a  # noqa: E731
            if classifier in ("linear", "linear+lda", "linear+ncm"):
                w, b = fit_masked_softmax(project(z)[keep], yy[keep], allowed[keep], weights[keep], l2)
                for _ in range(worst_corpus_rounds):  # group DRO: corpora the model fits worst weigh more
                    losses = _corpus_losses(project(z)[keep] @ w.T + b, yy[keep], allowed[keep], cc[keep], weights[keep])
                    scale = {c: np.exp(2.0 * (loss - np.mean(list(losses.values())))) for c, loss in losses.items()}
                    weights = weights * np.array([scale.get(c, 1.0) for c in cc])
                    w, b = fit_masked_softmax(project(z)[keep], yy[keep], allowed[keep], weights[keep], l2)
                score = zt @ w.T + b
                if subset_heads:  # beside it, one head per pair of training corpora; log-probabilities averaged
                    scores = [log_softmax(score)]
                    for pair in itertools.combinations(np.unique(cc), 2):
                        rows = keep & np.isin(cc, pair)
                        w, b = fit_masked_softmax(project(z)[rows], yy[rows], allowed[rows], weights[rows], l2)
                        scores.append(log_softmax(zt @ w.T + b))
                    score = np.mean(scores, axis=0)
                if test_time_copy:  # the clip's augmented copy read too, log-probabilities summed
                    score = log_softmax(score) + log_softmax(project((xa[test] - mean) / std) @ w.T + b)
                if no_augmentation_head:  # beside it, a head trained on the clean clips only, at this weight
                    rows = keep[:n]
                    w0, b0 = fit_masked_softmax(project(z)[:n][rows], yy[:n][rows], allowed[:n][rows], weights[:n][rows], l2)
                    score = log_softmax(score) + no_augmentation_head * log_softmax(zt @ w0.T + b0)
            if classifier == "per-block":  # one softmax per feature block, log-probabilities summed
                score, start = 0.0, 0
                for n_ in names:
                    width = columns(n_).stop - columns(n_).start
                    cols = slice(start, start + width)
                    start += width
                    w, b = fit_masked_softmax(project(z)[keep][:, cols], yy[keep], allowed[keep], weights[keep], l2)
                    score = score + log_softmax(zt[:, cols] @ w.T + b)
            if classifier in ("ncm", "linear+ncm"):  # cosine to each class's mean, corpora weighing the same
                unit = lambda a: a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-9)  # noqa: E731
                zk, yk, ck = project(z)[keep], yy[keep], cc[keep]
                ncm_score = np.full((len(zt), len(self.labels)), -1e9)
                for k in np.unique(yk):
                    means = [zk[(yk == k) & (ck == c)].mean(axis=0) for c in np.unique(ck[yk == k])]
                    ncm_score[:, k] = 10.0 * unit(zt) @ unit(np.mean(means, axis=0)[None])[0]
                score = ncm_score if classifier == "ncm" else log_softmax(score) + log_softmax(ncm_score)
            if classifier in ("lda", "linear+lda"):
                from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

                lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage)
                lda.priors = np.full(len(np.unique(yy[keep])), 1 / len(np.unique(yy[keep])))
                lda.fit(project(z)[keep], yy[keep])
                lda_score = np.full((len(zt), len(self.labels)), -1e9)
                lda_score[:, lda.classes_] = lda.decision_function(zt)
                score = lda_score if classifier == "lda" else log_softmax(score) + log_softmax(lda_score)
            scores[held], trained[held] = score, set(yy[keep])
        for held in CORPORA:
            test = (self.corpus == held) & (self.split != "test")
            score = scores[held]
            if transferred_bias:  # a class bias fitted on the other held-out corpora's predictions, added here
                score = score + self.unseen_corpus_bias({c: scores[c] for c in CORPORA if c != held})
            if words:  # fused, as `analyze` fuses them, with words that carry no emotion word (acted sentences)
                score = self.with_plain_words(held, score)
            out[held] = round(self.held_out_uar(held, trained[held], self.y[test], score), 1)
        values = list(out.values())
        out["mean"], out["worst"] = round(float(np.mean(values)), 1), min(values)
        return out

    def unseen_corpus_bias(self, scores: dict, temperature: float = 1.9, l2: float = 0.01) -> np.ndarray:
        """One logit bias per class minimising the class-balanced NLL of other held-out corpora's predictions
        (each corpus weighing the same, at about the shipped temperature): what those corpora shared in how the
        model leaned on a corpus it never heard."""
        from scipy.optimize import minimize

        from omniemo.perception.expression import log_softmax

        def loss(bias):
            total = 0.0
            for corpus, score in scores.items():
                rows = (self.corpus == corpus) & (self.split != "test")
                y = self.y[rows]
                logp = log_softmax(np.where(self.allowed[rows], (score + bias) / temperature, -1e9))[np.arange(len(y)), y]
                total -= np.mean([logp[y == k].mean() for k in np.unique(y)])
            return total / len(scores) + l2 * float(np.sum(bias ** 2))

        return minimize(loss, np.zeros(len(self.labels)), method="L-BFGS-B").x

    def with_plain_words(self, held: str, score: np.ndarray, temperature: float = 1.92) -> np.ndarray:
        """Log-probabilities of the fused answer in the held-out corpus's labels: the voice at the shipped single-clip
        temperature, and words without emotion words and of neutral tone (what an acted corpus's fixed sentences
        give), at the shipped fusion weights and floors."""
        from omniemo.perception.expression import log_softmax
        from omniemo.reasoning.fusion import fuse, text_concepts

        plain = text_concepts({}, 0.0)
        out = np.full(score.shape, -1e9)
        for row, p in zip(out, np.exp(log_softmax(score / temperature))):
            fused = fuse({"voice": dict(zip(self.labels, p)), "text": plain}, held).probabilities
            for label, q in fused.items():
                row[self.labels.index(label)] = np.log(q)
        return out

    def held_out_uar(self, held: str, trained: set, truth: np.ndarray, score: np.ndarray) -> float:
        """UAR of the argmax over the held-out corpus's classes the training data had; RAVDESS over those only
        (calm and surprise are in no other corpus), the others over all of theirs."""
        classes = [self.labels.index(lab) for lab in self.get_labelset(held).labels]
        can = [k for k in classes if k in trained]
        predicted = np.array(can)[np.argmax(score[:, can], axis=1)]
        scored = can if held == "ravdess" else classes
        return 100 * float(np.mean([np.mean(predicted[truth == k] == k) for k in scored if (truth == k).any()]))

    def shipped_training_set(self, held: str):
        """The shipped design's training rows without ``held``: features (each clip and its augmented copy), corpus,
        class and each row's allowed classes."""
        train, cols = self.corpus != held, _shipped_columns()
        stack = np.vstack([self.clean[:, cols][train], self.aug[:, cols][train]])
        return stack, np.tile(self.corpus[train], 2), np.tile(self.y[train], 2), np.tile(self.allowed[train], (2, 1))

    def shipped_head(self, held: str):
        """The shipped single-clip design trained without ``held``: (mean, std, weights, bias) of its standardised
        features and masked softmax."""
        from omniemo.train.speech_emotion import balanced_weights, fit_masked_softmax

        stack, cc, yy, allowed = self.shipped_training_set(held)
        mean, std = stack.mean(0), stack.std(0) + 1e-6
        return mean, std, *fit_masked_softmax((stack - mean) / std, yy, allowed, balanced_weights(cc, yy), 0.05)

    def adaptation(self, seed: int = 0) -> dict:
        """Single clip against corpus-centred: all clips, skewed class mixes, means from few clips."""
        from omniemo.train.speech_emotion import CORPORA, balanced_weights, by_group, fit_masked_softmax

        rng = np.random.default_rng(seed)
        x = self.clean[:, _shipped_columns()]
        out = {}
        for held in CORPORA:
            stack, cc, yy, allowed = self.shipped_training_set(held)
            mean, std = stack.mean(0), stack.std(0) + 1e-6
            single = fit_masked_softmax((stack - mean) / std, yy, allowed, balanced_weights(cc, yy), 0.05)
            centred = fit_masked_softmax(by_group(stack, cc, spread=False) / std, yy, allowed,
                                         balanced_weights(cc, yy), 0.05)

            def uar(rows, centre=None):
                w, b = single if centre is None else centred
                z = (x[rows] - (mean if centre is None else centre)) / std
                return self.held_out_uar(held, set(yy), self.y[rows], z @ w.T + b)

            rows = np.where((self.corpus == held) & (self.split != "test"))[0]
            r = {"single": uar(rows), "centred": uar(rows, x[rows].mean(0))}
            skewed = {"single": [], "centred": []}
            for k in np.unique(self.y[rows]):  # one emotion makes half of the clips
                major, minor = rows[self.y[rows] == k], rows[self.y[rows] != k]
                sub = np.r_[major, rng.choice(minor, min(len(minor), len(major)), replace=False)]
                skewed["single"].append(uar(sub))
                skewed["centred"].append(uar(sub, x[sub].mean(0)))
            r.update({f"skewed {k}": float(np.mean(v)) for k, v in skewed.items()})
            for n in (5, 10, 20, 50):
                r[f"mean of {n} clips"] = float(np.mean([uar(rows, x[rng.choice(rows, n, replace=False)].mean(0))
                                                         for _ in range(10)]))
            out[held] = {k: round(v, 1) for k, v in r.items()}
        return out


    def listeners(self, summary_table: Path) -> dict:
        """Held-out CREMA-D (non-test speakers) read by the shipped design trained on the other three corpora, beside
        the crowd's majority vote from the voice alone (``VoiceVote`` of summaryTable.csv; a tied vote counts as a
        share of each of its emotions): both against the acted labels, and the model against the crowd."""
        import csv

        from omniemo.labels import CREMAD

        with summary_table.open(newline="") as handle:
            votes = {row["FileName"]: [CREMAD.from_code(v) for v in row["VoiceVote"].split(":")]
                     for row in csv.DictReader(handle)}
        rows = np.where((self.corpus == "cremad") & (self.split != "test"))[0]
        mean, std, w, b = self.shipped_head("cremad")
        own = [k for k in range(len(self.labels)) if self.allowed[rows[0], k]]
        score = ((self.clean[rows][:, _shipped_columns()] - mean) / std) @ w.T + b
        model = [self.labels[k] for k in np.array(own)[np.argmax(score[:, own], axis=1)]]
        acted = [self.labels[k] for k in self.y[rows]]
        crowd = [votes[Path(self.paths[i]).stem] for i in rows]

        def uar(reference, answers):
            """UAR of ``answers`` (a label, or a list of tied labels sharing one) against ``reference`` labels."""
            recall = {}
            for ref, answer in zip(reference, answers):
                answer = answer if isinstance(answer, list) else [answer]
                recall.setdefault(ref, []).append(answer.count(ref) / len(answer))
            return {"UAR": round(100 * float(np.mean([np.mean(v) for v in recall.values()])), 1),
                    **{k: round(100 * float(np.mean(v))) for k, v in sorted(recall.items())}}

        untied = [i for i, vote in enumerate(crowd) if len(vote) == 1]
        return {"clips": len(rows), "model against the acted labels": uar(acted, model),
                "crowd's voice vote against the acted labels": uar(acted, crowd),
                f"model against the crowd's vote ({len(untied)} untied clips)":
                    uar([crowd[i][0] for i in untied], [model[i] for i in untied]),
                "acted label against the crowd's vote": uar([crowd[i][0] for i in untied], [acted[i] for i in untied])}

    def one_corpus_classes(self) -> dict:
        """Classes a single training corpus teaches, on corpora it never heard: surprise and calm (RAVDESS only) let
        into the softmax of corpora that lack them (every such answer is wrong), and disgust on held-out CREMA-D
        (taught by RAVDESS alone) and on held-out RAVDESS (taught by CREMA-D alone), with a bias subtracted from its
        logit."""
        from omniemo.train.speech_emotion import balanced_weights, fit_masked_softmax

        x = self.clean[:, _shipped_columns()]
        out = {}
        for held in ("ravdess", "cremad", "ased", "urdu"):
            test = (self.corpus == held) & (self.split != "test")
            stack, cc, yy, allowed = self.shipped_training_set(held)
            mean, std = stack.mean(0), stack.std(0) + 1e-6
            w, b = fit_masked_softmax((stack - mean) / std, yy, allowed, balanced_weights(cc, yy), 0.05)
            score, y, own = ((x[test] - mean) / std) @ w.T + b, self.y[test], self.allowed[test][0]
            can = [k for k in range(len(self.labels)) if own[k] and k in set(yy)]

            def read(classes, bias=0.0, k_bias=None):
                s = score.copy()
                if k_bias is not None:
                    s[:, k_bias] -= bias
                pred = np.array(classes)[np.argmax(s[:, classes], axis=1)]
                return pred, round(100 * float(np.mean([np.mean(pred[y == k] == k) for k in can if (y == k).any()])), 1)

            r = {"UAR": read(can)[1]}
            if held != "ravdess":
                for extra in ("surprise", "calm"):
                    k = self.labels.index(extra)
                    pred, uar = read(can + [k])
                    r[f"+ {extra}: said on % / UAR"] = f"{100 * np.mean(pred == k):.1f} / {uar}"
            if held in ("ravdess", "cremad"):
                k = self.labels.index("disgust")
                for bias in (0.0, 1.0, 2.0):
                    pred, uar = read(can, bias, k)
                    r[f"disgust logit -{bias:g}: recall / said on % (true %) / UAR"] = (
                        f"{100 * np.mean(pred[y == k] == k):.0f} / {100 * np.mean(pred == k):.0f} ({100 * np.mean(y == k):.0f}) / {uar}")
            out[held] = r
        return out


def _shipped_columns() -> np.ndarray:
    return np.r_[tuple(np.arange(columns(n).start, columns(n).stop) for n in ("m2", "m3", "m4", "eg"))]


def _corpus_losses(logits, y, allowed, corpus, weights) -> dict:
    """Each training corpus's weighted mean negative log-likelihood, each row over its own corpus's classes."""
    from omniemo.perception.expression import log_softmax

    logp = log_softmax(np.where(allowed, logits, -1e9))[np.arange(len(y)), y]
    return {c: float(-(weights[corpus == c] * logp[corpus == c]).sum() / weights[corpus == c].sum())
            for c in np.unique(corpus)}


def _projector(z, corpus, y, k):
    """Removes the k main directions along which one emotion's mean differs between training corpora."""
    if not k:
        return lambda a: a
    diffs = []
    for cls in np.unique(y):
        present = [c for c in np.unique(corpus) if ((corpus == c) & (y == cls)).sum() > 5]
        if len(present) > 1:
            means = np.array([z[(corpus == c) & (y == cls)].mean(0) for c in present])
            diffs.append(means - means.mean(0))
    v = np.linalg.svd(np.vstack(diffs), full_matrices=False)[2][:k]
    return lambda a: a - (a @ v.T) @ v


VARIANTS = {
    "shipped design (layers 2-4 + eGeMAPS, 1 augmented copy)": {},
    "no augmentation": {"aug_weight": 0.0},
    "augmented copies at weight 0.25": {"aug_weight": 0.25},
    "frame-normalised states, layers 2-4": {"names": ("n2", "n3", "n4", "eg")},
    "layer means + frame-normalised, layers 2-4": {"names": ("m2", "m3", "m4", "n2", "n3", "n4", "eg")},
    "layers 1-5": {"names": ("m1", "m2", "m3", "m4", "m5", "eg")},
    "each layer's mean L2-normalised": {"block_norm": True},
    "standardised with corpus-balanced statistics": {"balanced_stats": True},
    "class-conditional corpus directions projected out (2)": {"corpus_directions": 2},
    "class-conditional corpus directions projected out (5)": {"corpus_directions": 5},
    "class-conditional corpus directions projected out (10)": {"corpus_directions": 10},
    "shrinkage LDA (0.6) instead of the softmax": {"classifier": "lda"},
    "softmax + LDA, log-probabilities summed": {"classifier": "linear+lda"},
    "nearest class mean by cosine (corpus-balanced means) instead of the softmax": {"classifier": "ncm"},
    "softmax + nearest class mean, log-probabilities summed": {"classifier": "linear+ncm"},
    "worst training corpus weighted up (group DRO, 3 rounds)": {"worst_corpus_rounds": 3},
    "one softmax per layer and eGeMAPS, log-probabilities summed": {"classifier": "per-block"},
    "main 128 directions of the training features (PCA)": {"pca": 128},
    "channel-normalised log-mel (layers 2-4)": {"names": ("c2", "c3", "c4", "eg")},
    "layers 2-4 + channel-normalised layers 2-4": {"names": ("m2", "m3", "m4", "c2", "c3", "c4", "eg")},
    "+ Whisper tiny.en states 0-4 (a second encoder)": {"names": ("m2", "m3", "m4", "t0", "t1", "t2", "t3", "t4", "eg")},
    "+ standard deviations of layers 2-4": {"names": ("m2", "m3", "m4", "s2", "s3", "s4", "eg")},
    "each corpus centred on its own mean, the held-out one too (transductive: the `corpus` variant)":
        {"corpus_centred": True},
    "corpus-centred, no augmentation": {"corpus_centred": True, "aug_weight": 0.0},
    "test time: the clip and its augmented copy, log-probabilities summed": {"test_time_copy": True},
    "trained corpus-centred, one clip read against the training corpora's mean": {"centred_training": True},
    "one head on all three training corpora and one on each pair of them, log-probabilities averaged":
        {"subset_heads": True},
    "each corpus z-scored on its own mean and spread, the held-out one too (transductive)": {"corpus_scaled": True},
    "a class bias for unseen corpora, fitted on the other held-out corpora's predictions": {"transferred_bias": True},
    "beside it, a head trained without augmentation, log-probabilities summed (weight 1)": {"no_augmentation_head": 1.0},
    "beside it, a head trained without augmentation at weight 0.5": {"no_augmentation_head": 0.5},
    "fused with words that carry no emotion word, as analyze fuses them": {"words": True},
    "degraded held-out clips: shipped design": {"degraded": True},
    "degraded held-out clips: + a head trained without augmentation (weight 1)": {"degraded": True, "no_augmentation_head": 1.0},
    "degraded held-out clips: fused with words that carry no emotion word": {"degraded": True, "words": True},
    "degraded held-out clips: corpus-centred": {"degraded": True, "corpus_centred": True},
    "degraded held-out clips: no augmentation": {"degraded": True, "aug_weight": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=HERE / "out" / "voice-ingredients.npz")
    parser.add_argument("--only", help="run the variants whose name contains this text")
    parser.add_argument("--adaptation", action="store_true", help="the corpus variant's robustness checks instead")
    parser.add_argument("--one-corpus-classes", action="store_true",
                        help="classes one training corpus teaches (surprise, calm; disgust) on corpora never heard")
    parser.add_argument("--listeners", action="store_true",
                        help="held-out CREMA-D beside the crowd's majority vote from the voice alone")
    args = parser.parse_args()
    from omniemo.train.speech_emotion import corpus_items

    items = [it for corpus, root in ROOTS.items() for it in corpus_items(corpus, root)]
    protocol = Protocol(items, *load_features(items, args.cache))
    if args.listeners:
        print(json.dumps(protocol.listeners(DATA / "crema-d-samples" / "CREMA-D_summaryTable.csv"), indent=1))
        return
    if args.one_corpus_classes:
        for held, r in protocol.one_corpus_classes().items():
            print(held, json.dumps(r, indent=1))
        return
    if args.adaptation:
        checks = protocol.adaptation()
        keys = list(next(iter(checks.values())))
        print("| held-out corpus | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
        for held, r in checks.items():
            print(f"| {held} | " + " | ".join(str(r[k]) for k in keys) + " |")
        return
    rows = {}
    print("| variant | RAVDESS | CREMA-D | ASED | URDU | mean | worst |\n|---|---|---|---|---|---|---|")
    for name, options in VARIANTS.items():
        if args.only and args.only not in name:
            continue
        r = rows[name] = protocol.run(**options)
        print(f"| {name} | {r['ravdess']} | {r['cremad']} | {r['ased']} | {r['urdu']} | {r['mean']} | {r['worst']} |",
              flush=True)
    from omniemo import files

    (HERE / "out").mkdir(exist_ok=True)
    files.write_text(HERE / "out" / "voice_ingredients.json", json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
