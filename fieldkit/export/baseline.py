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

__all__ = ["load_export", "run_baseline"]

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


def _fit(X: dict[str, np.ndarray], y: dict[str, np.ndarray], seed: int) -> Pipeline:
    if "train" not in X:
        raise ExportError("this export has no train split; the baseline needs one.")
    y_train = y["train"]
    if y_train.ndim == 1 and len(np.unique(y_train)) < 2:
        raise ExportError("the train split holds a single class; a classifier needs at least "
                          "two.", hint="Re-split the dataset with more groups or labels.")
    return _model(y_train.ndim == 2, seed).fit(X["train"], y_train)


def run_baseline(out_dir: Path, *, seed: int = 0) -> dict[str, Any]:
    """Train the baseline on the train split and evaluate every split.

    Writes ``baseline/metrics.json`` and ``baseline/confusion_matrix.png`` (on the test
    split, else validation, else train) into ``out_dir``, and returns the metrics: per split
    ``accuracy``, ``macro_f1`` and the chance levels (all in [0, 1]), plus the model, task,
    seed, label names, the labels no training clip carries and the confusion matrix.
    """
    out_dir = Path(out_dir)
    X, y, label_names = load_export(out_dir)
    model = _fit(X, y, seed)
    predicted = {s: model.predict(X[s]) for s in X}
    n = len(label_names)
    evaluated = _evaluation_split(list(X))
    matrix = _confusion(y[evaluated], predicted[evaluated], n)
    metrics = {
        "model": MODEL_NAME, "task": "multi-label" if y["train"].ndim == 2 else "single-label",
        "seed": seed, "label_names": list(label_names), "n_features": int(X["train"].shape[1]),
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
