"""Domain-shift diagnostics: how different is the target from the source, and which classes carry over.

* vocabulary overlap — share of the target's word types (and tokens) that occur in the source;
* out-of-vocabulary rate — share of target word tokens never seen in the source;
* subword fertility — word pieces per word under the model's tokenizer, source vs target;
* proxy A-distance — ``2 (1 - 2 err)`` of a TF-IDF classifier telling source from target texts
  (0: indistinguishable, 2: perfectly separable; Ben-David et al. 2007);
* per-class zero-shot recall — the source model applied as is to the target's test rows.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from textshift.data import TextData
from textshift.model import Classifier, labels_from

WORD = re.compile(r"[a-z][a-z'\-]+")


def _words(texts: list[str]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(WORD.findall(text.lower()))
    return counts


def vocabulary_overlap(source_texts: list[str], target_texts: list[str]) -> dict:
    """Type and token overlap of the target's words with the source's."""
    source, target = _words(source_texts), _words(target_texts)
    shared = set(source) & set(target)
    tokens = sum(target.values())
    oov = sum(n for word, n in target.items() if word not in source)
    return {"target_types": len(target), "source_types": len(source),
            "type_overlap": round(len(shared) / max(1, len(target)), 4),
            "oov_token_rate": round(oov / max(1, tokens), 4)}


def proxy_a_distance(source_texts: list[str], target_texts: list[str], *, seed: int = 0,
                     max_rows: int = 2000) -> float:
    """Proxy A-distance from 5-fold cross-validated error of TF-IDF + logistic regression, balanced samples."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(seed)
    n = min(len(source_texts), len(target_texts), max_rows)
    if n < 10:
        return float("nan")
    src = [source_texts[i] for i in rng.choice(len(source_texts), n, replace=False)]
    tgt = [target_texts[i] for i in rng.choice(len(target_texts), n, replace=False)]
    model = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2), LogisticRegression(max_iter=1000))
    accuracy = cross_val_score(model, src + tgt, [0] * n + [1] * n, cv=5).mean()
    return round(float(2 * (1 - 2 * (1 - accuracy))), 4)


def fertility(tokenizer, texts: list[str], *, limit: int = 2000) -> float:
    """Mean word pieces per whitespace word."""
    sample = texts[:limit]
    pieces = sum(len(tokenizer.tokenize(t)) for t in sample)
    words = sum(len(t.split()) for t in sample)
    return round(pieces / max(1, words), 3)


def zero_shot_recall(source: Classifier, test: TextData) -> dict[str, float]:
    """Per-class recall of the source model on test rows of the classes it knows (restricted to those)."""
    shared = [label for label in sorted(set(test.labels)) if label in source.label2id]
    keep = [i for i, label in enumerate(test.labels) if label in source.label2id]
    if not keep:
        return {}
    columns = [source.label2id[label] for label in shared]
    probs = source.predict_proba([test.texts[i] for i in keep])[:, columns]
    predicted = labels_from(probs, shared)
    truth = [test.labels[i] for i in keep]
    recall = {}
    for label in shared:
        rows = [p for p, t in zip(predicted, truth, strict=True) if t == label]
        recall[label] = round(sum(p == label for p in rows) / len(rows), 4)
    return dict(sorted(recall.items(), key=lambda kv: -kv[1]))


def domain_shift(source_data: TextData | None, target: TextData, test: TextData, source: Classifier) -> dict:
    """All diagnostics in one dict (source-text measures are skipped when the source data is unavailable)."""
    result: dict = {"zero_shot_recall": zero_shot_recall(source, test),
                    "target_fertility": fertility(source.tokenizer, target.texts),
                    "classes_only_in_source": sorted(set(source.labels) - set(target.labels)),
                    "classes_only_in_target": sorted(set(target.labels) - set(source.labels))}
    if source_data is not None:
        result.update(vocabulary_overlap(source_data.texts, target.texts))
        result["proxy_a_distance"] = proxy_a_distance(source_data.texts, target.texts)
        result["source_fertility"] = fertility(source.tokenizer, source_data.texts)
    return result
