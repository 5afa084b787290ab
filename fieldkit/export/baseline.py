"""A reference baseline on any export: pooled features, a linear classifier, honest chance levels.

The point is a sanity check the ML team can reproduce in seconds, not a good model: "is there
signal in these features, and do the splits behave?". Hence:

- **Model**: median imputation (``peak_dbfs`` is -inf for digital silence), standardisation
  and ``LogisticRegression(max_iter=2000, class_weight="balanced")``. A linear probe is
  deterministic, fast, has one obvious configuration and little capacity to memorise a
  site's recording conditions, so a gap between train and test reads as leakage or shift
  rather than as forest variance; balanced class weights keep macro-F1 meaningful on the
  skewed label counts typical of field data. A random forest would fit better and explain less.
- **Tasks**: when every clip has exactly one label, a multi-class problem on that label. When
  clips may have several labels (or none), one-vs-rest logistic regression on the multi-hot
  matrix; ``accuracy`` is then subset accuracy (every label right).
- **Chance**: the accuracy and macro-F1 of always predicting the training set's most frequent
  class (or label set), and the accuracy of guessing uniformly (1/n_classes; 2^-n_labels for
  label sets).
- **Honesty**: an accuracy over a handful of clips is noise presented as a result. Every class
  found in the evaluated split needs at least ``min_clips_per_class`` clips there and in the
  train split (a clip counts for each label it carries); otherwise no model is trained, nothing
  is scored, and the result says so (``evaluable: false``, ``message``, ``too_few``: which
  class has how many clips in which split).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, multilabel_confusion_matrix
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fieldkit.errors import ExportError
from fieldkit.export.formats import get_format, read_export_meta

__all__ = ["MIN_CLIPS_PER_CLASS", "clips_per_class", "load_export", "run_baseline"]

#: Fewer clips of a class than this in the train or the evaluated split: not evaluated.
MIN_CLIPS_PER_CLASS = 5

MODEL_NAME = ("SimpleImputer(median) + StandardScaler + "
              "LogisticRegression(max_iter=2000, class_weight='balanced')")


def load_export(out_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                        tuple[str, ...]]:
    """Pooled features and labels of every split of an export, whatever its format.

    Returns
    -------
    X : dict of str to ndarray
        Split -> ``(clip, column)`` float matrix of pooled features and QC
        (:func:`fieldkit.export.pooling.pooled_columns`); non-finite values become NaN.
    y : dict of str to ndarray
        Split -> class indices ``(clip,)`` when every clip has one label, else the
        ``(clip, label)`` uint8 multi-hot matrix.
    label_names : tuple of str
        Class (column) names, in index order.
    """
    out_dir = Path(out_dir)
    meta = read_export_meta(out_dir)
    fmt = get_format(meta["format"])
    X, y = {}, {}
    for split in meta["splits"]:
        pooled = fmt.read_pooled(out_dir, split, meta)
        features = np.asarray(pooled.features, dtype=np.float64)
        X[split] = np.where(np.isfinite(features), features, np.nan)
        y[split] = pooled.labels.argmax(axis=1) if meta["single_label"] else pooled.labels
    return X, y, tuple(meta["label_names"])


def _model(multi_label: bool, seed: int) -> Pipeline:
    linear = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
    head = OneVsRestClassifier(linear) if multi_label else linear
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         StandardScaler(), head)


def _majority(y_train: np.ndarray, n: int) -> np.ndarray:
    """``n`` copies of the most frequent class (or label set) of the training split."""
    if y_train.ndim == 1:
        return np.full(n, np.bincount(y_train).argmax())
    rows, counts = np.unique(y_train, axis=0, return_counts=True)
    return np.repeat(rows[counts.argmax()][None, :], n, axis=0)


def _scores(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> tuple[float, float]:
    labels = None if y_true.ndim == 2 else list(range(n_labels))
    macro = f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
    return float(accuracy_score(y_true, y_pred)), float(macro)


def _split_metrics(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray,
                   n_labels: int) -> dict[str, Any]:
    accuracy, macro_f1 = _scores(y_true, y_pred, n_labels)
    chance_acc, chance_f1 = _scores(y_true, _majority(y_train, len(y_true)), n_labels)
    uniform = 1.0 / n_labels if y_true.ndim == 1 else 2.0 ** -n_labels
    return {"n_clips": len(y_true), "accuracy": accuracy, "macro_f1": macro_f1,
            "chance_majority_accuracy": chance_acc, "chance_majority_macro_f1": chance_f1,
            "chance_uniform_accuracy": uniform}


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Single-label: (true, predicted) counts. Multi-label: per label TN, FP, FN, TP."""
    if y_true.ndim == 1:
        return confusion_matrix(y_true, y_pred, labels=list(range(n_labels)))
    return multilabel_confusion_matrix(y_true, y_pred).reshape(n_labels, 4)


def _plot(matrix: np.ndarray, label_names: tuple[str, ...], split: str, path: Path,
          single: bool) -> None:
    """Save the confusion matrix as a labelled heat map (Agg canvas, no pyplot state)."""
    columns = list(label_names) if single else ["TN", "FP", "FN", "TP"]
    size = 2.5 + 0.45 * max(len(label_names), len(columns))
    fig = Figure(figsize=(size, size * 0.85), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="clips")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted label" if single else "outcome")
    ax.set_ylabel("true label" if single else "label")
    ax.set_title(f"Baseline confusion matrix ({split} split)")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    fig.savefig(path, dpi=100)


def _absent_from_train(y_train: np.ndarray, label_names: tuple[str, ...]) -> list[str]:
    """Labels no training clip carries: the model can never predict them."""
    present = set(np.unique(y_train)) if y_train.ndim == 1 else set(
        np.flatnonzero(y_train.any(axis=0)))
    return [name for i, name in enumerate(label_names) if i not in present]


def _evaluation_split(splits: list[str]) -> str:
    return next(s for s in ("test", "validation", "train") if s in splits)


def _check_train(y: dict[str, np.ndarray]) -> None:
    if "train" not in y:
        raise ExportError("this export has no train split; the baseline needs one.")
    if y["train"].ndim == 1 and len(np.unique(y["train"])) < 2:
        raise ExportError("the train split holds a single class; a classifier needs at least "
                          "two.", hint="Re-split the dataset with more groups or labels.")


def _fit(X: dict[str, np.ndarray], y: dict[str, np.ndarray], seed: int) -> Pipeline:
    _check_train(y)
    return _model(y["train"].ndim == 2, seed).fit(X["train"], y["train"])


def clips_per_class(y: dict[str, np.ndarray], label_names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Split -> label -> clips carrying it (class indices or a multi-hot matrix per split)."""
    out = {}
    for split, labels in y.items():
        counts = (np.bincount(labels, minlength=len(label_names)) if labels.ndim == 1
                  else labels.astype(np.int64).sum(axis=0))
        out[split] = {name: int(n) for name, n in zip(label_names, counts)}
    return out


def _too_few(counts: dict[str, dict[str, int]], evaluated: str, minimum: int) -> list[dict[str, Any]]:
    """The (label, split, clips) below ``minimum``, for every class the evaluated split holds."""
    present = [label for label, n in counts[evaluated].items() if n > 0]
    short = []
    for label in present:
        for split in dict.fromkeys(("train", evaluated)):
            n = counts.get(split, {}).get(label, 0)
            if n < minimum:
                short.append({"label": label, "split": split, "clips": n})
    return short


def _not_evaluable(out_dir: Path, base: dict[str, Any], too_few: list[dict[str, Any]],
                   evaluated: str, minimum: int) -> dict[str, Any]:
    shown = ", ".join(f"{t['label']} {t['clips']} in {t['split']}" for t in too_few[:6])
    more = f" and {len(too_few) - 6} more" if len(too_few) > 6 else ""
    message = (f"not evaluated: too few clips per class to measure anything (at least {minimum} of each class "
               f"in train and {evaluated} are needed; {shown}{more}). An accuracy here would be noise.")
    metrics = {**base, "evaluable": False, "message": message, "too_few": too_few,
               "evaluated_split": evaluated}
    folder = out_dir / "baseline"
    folder.mkdir(exist_ok=True)
    (folder / "confusion_matrix.png").unlink(missing_ok=True)  # an earlier run's figure would mislead
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return metrics


def run_baseline(out_dir: Path, *, seed: int = 0, min_clips_per_class: int = MIN_CLIPS_PER_CLASS) -> dict[str, Any]:
    """Train the baseline on the train split and evaluate every split, if there is enough to evaluate.

    Writes ``baseline/metrics.json`` and ``baseline/confusion_matrix.png`` (on the test
    split, else validation, else train) into ``out_dir``, and returns the metrics: per split
    ``accuracy``, ``macro_f1`` and the chance levels (all in [0, 1]), plus the model, task,
    seed, label names, the labels no training clip carries and the confusion matrix;
    ``evaluable`` is true and ``clips_per_class`` gives the counts behind the figures.

    When a class of the evaluated split has fewer than ``min_clips_per_class`` clips there or
    in the train split, nothing is trained: the result has ``evaluable: false``, a
    ``message`` saying why, and ``too_few`` (label, split, clips); no accuracy is reported.
    """
    out_dir = Path(out_dir)
    X, y, label_names = load_export(out_dir)
    _check_train(y)
    counts = clips_per_class(y, label_names)
    evaluated = _evaluation_split(list(X))
    base = {"model": MODEL_NAME, "task": "multi-label" if y["train"].ndim == 2 else "single-label",
            "seed": seed, "label_names": list(label_names), "min_clips_per_class": min_clips_per_class,
            "clips_per_class": counts}
    too_few = _too_few(counts, evaluated, min_clips_per_class)
    if too_few:
        return _not_evaluable(out_dir, base, too_few, evaluated, min_clips_per_class)
    model = _fit(X, y, seed)
    predicted = {s: model.predict(X[s]) for s in X}
    n = len(label_names)
    matrix = _confusion(y[evaluated], predicted[evaluated], n)
    metrics = {
        **base, "evaluable": True, "n_features": int(X["train"].shape[1]),
        "labels_absent_from_train": _absent_from_train(y["train"], label_names),
        "splits": {s: _split_metrics(y[s], predicted[s], y["train"], n) for s in X},
        "confusion_matrix": {"split": evaluated, "matrix": matrix.tolist()},
    }
    folder = out_dir / "baseline"
    folder.mkdir(exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    _plot(matrix, label_names, evaluated, folder / "confusion_matrix.png",
          single=metrics["task"] == "single-label")
    return metrics
