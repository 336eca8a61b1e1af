"""``graft evaluate MODEL DATA``: metrics of a saved model on labelled data."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler
from graft.cli.fit import print_metrics


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("evaluate", help="metrics of a saved model on labelled data")
    p.add_argument("model", help="a saved model folder")
    p.add_argument(
        "data",
        help="image folder or table: its test split (the training data is split as in "
        "training), else all files",
    )
    p.add_argument("--split", choices=["train", "val", "test"], help="evaluate this split only")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--confusion", action="store_true", help="print the confusion matrix (classification)"
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )
    return {"evaluate": cmd_evaluate}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from graft.model import load

    model = load(args.model)
    report = model.evaluation(
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        progress=args.progress,
        with_confusion=args.confusion,
    )
    which = "all files" if report["split"] == "all" else f"the {report['split']} split"
    print(f"evaluated {which} of {args.data}: N={report['n']}")
    print_metrics({"evaluation": report["metrics"]})
    if "per_class" in report:
        print(per_class_table(report["per_class"]))
    if "confusion" in report:
        names = [str(r["class"]) for r in report["per_class"]]
        print(confusion_table(report["confusion"], names))
    return 0


def per_class_table(rows: list[dict[str, Any]]) -> str:
    """Precision, recall, F1 and support per class, one line each."""
    width = max([5, *(len(str(r["class"])) for r in rows)])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    lines += [
        f"{r['class']:<{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}  "
        f"{r['support']:7d}"
        for r in rows
    ]
    return "per class:\n" + "\n".join(lines)


def confusion_table(matrix: list[list[int]], names: list[str]) -> str:
    """The confusion matrix: rows are the true classes, columns the predicted ones."""
    width = max([4, *(len(n) for n in names), *(len(str(v)) for row in matrix for v in row)])
    head = " " * width + "  " + " ".join(f"{n:>{width}}" for n in names)
    body = [
        f"{n:<{width}}  " + " ".join(f"{v:>{width}}" for v in row)
        for n, row in zip(names, matrix, strict=True)
    ]
    return "confusion (rows: true, columns: predicted):\n" + "\n".join([head, *body])
