"""Train the feature classifier behind `features=digits` (or mnist / fashion_mnist) and save it.

    python scripts/train_classifier.py                  # digits -> ganlab/metrics/weights/digits.pt (shipped)
    python scripts/train_classifier.py --dataset mnist  # -> ganlab's cache, as first use of features=mnist does

Prints the held-out accuracy, which is also stored in the file.
"""

from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf

from ganlab.config import CONF_DIR
from ganlab.metrics.classifier import save_classifier, train_classifier
from ganlab.metrics.extractors import CLASSIFIERS, SHIPPED_WEIGHTS, classifier_path, classifier_training_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(CLASSIFIERS), default="digits")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="digits only; default: ganlab's setting (mnist and fashion_mnist use the settings of first use)",
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data_cfg = OmegaConf.load(CONF_DIR / "data" / f"{args.dataset}.yaml")
    start = time.perf_counter()
    if args.dataset == "digits":
        resolution, epochs, batch_size = CLASSIFIERS["digits"]
        images, labels = classifier_training_set("digits", data_cfg)
        model, meta = train_classifier(images, labels, 10, resolution, args.epochs or epochs, batch_size=batch_size)
        path = SHIPPED_WEIGHTS / "digits.pt"
        save_classifier(model, {**meta, "dataset": "digits"}, path)
    else:
        path = classifier_path(args.dataset, data_cfg)  # trains and caches when absent
        from ganlab.metrics.classifier import load_classifier

        _, meta = load_classifier(path)
    print(
        f"{args.dataset}: held-out accuracy {meta['test_accuracy']:.4f} on {meta['test_size']} images "
        f"({meta['train_size']} trained on, {meta['epochs']} epochs, {time.perf_counter() - start:.0f} s) -> {path}"
    )


if __name__ == "__main__":
    main()
