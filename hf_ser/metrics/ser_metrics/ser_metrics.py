"""SER classification metrics: accuracy, UAR, macro/weighted F1, per-class P/R/F1, confusion matrix.

An ``evaluate`` metric module shipped inside hf-ser and loaded from its folder with
``evaluate.load(path)``, so nothing is fetched from the Hub.

UAR (unweighted average recall) is the mean of the per-class recalls: the standard SER headline number,
insensitive to class imbalance. Classes absent from both predictions and references are left out of the
macro averages; a class with references but no predictions has precision 0.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    num_labels (int, optional): number of classes (default: 1 + the largest id seen).
    label_names (list of str, optional): names for the per-class report.
Returns:
    accuracy, uar, macro_f1, weighted_f1 (floats), per_class (dict name -> precision/recall/f1/support),
    confusion_matrix (list of lists, rows = true class, columns = predicted class).
"""


class SerMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, num_labels=None, label_names=None):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if predictions.shape != references.shape or predictions.size == 0:
            raise ValueError(f"need as many predictions as references (>0), got {predictions.size}, {references.size}")
        if num_labels is None:
            num_labels = len(label_names) if label_names else int(max(predictions.max(), references.max())) + 1
        names = list(label_names) if label_names else [str(i) for i in range(num_labels)]
        matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
        np.add.at(matrix, (references, predictions), 1)
        true_pos = np.diag(matrix).astype(float)
        support = matrix.sum(axis=1).astype(float)
        predicted = matrix.sum(axis=0).astype(float)
        recall = np.divide(true_pos, support, out=np.zeros(num_labels), where=support > 0)
        precision = np.divide(true_pos, predicted, out=np.zeros(num_labels), where=predicted > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros(num_labels), where=denom > 0)
        present = support > 0
        return {
            "accuracy": float(true_pos.sum() / support.sum()),
            "uar": float(recall[present].mean()),
            "macro_f1": float(f1[present].mean()),
            "weighted_f1": float((f1 * support).sum() / support.sum()),
            "per_class": {
                names[i]: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i in range(num_labels)
            },
            "confusion_matrix": matrix.tolist(),
        }
