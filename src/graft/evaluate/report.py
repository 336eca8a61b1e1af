"""One self-contained HTML report of a run: summary, plan, advisor, metrics, comparison, plots.

The file has inline CSS and PNG images as data URIs; it loads nothing from the network, so it
can be mailed, archived or opened offline. Every user-provided string is HTML-escaped and every
number goes through :func:`graft.metrics.format_value`, the rounding the terminal uses.

Example::

    report = Report("Digits, two-stage fine-tuning")
    report.add_summary({"dataset": "digits", "backbone": "efficientnet_lite0"})
    report.add_metrics({"test": {"accuracy": 0.97}})
    report.add_figure("Learning curves", plot_learning_curves(history), "loss per epoch")
    report.write("report.html")
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from graft.errors import ConfigError
from graft.evaluate.report_style import CSS
from graft.metrics import METRICS, format_value

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PLAN_FIXED = {"stage", "epochs", "bn", "trainable", "patience"}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _cell(value: Any, numeric: bool = False) -> str:
    """A table cell: numbers right-aligned and rounded like the terminal, text escaped."""
    text = _e(format_value(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td class="num na">—</td>' if numeric else '<td class="na">—</td>'
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):  # pre-formatted numbers such as "12,810" or "3.0e-04"
        value = value.replace(",", "")
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _numeric_columns(rows: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> set[str]:
    """Columns whose every present value is a number (right-aligned); the first labels rows."""
    out = set()
    for c in cols[1:]:
        values = [r.get(c) for r in rows if r.get(c) is not None]
        if values and all(_is_number(v) for v in values):
            out.add(c)
    return out


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def _head(cols: Sequence[str], numeric: set[str]) -> str:
    cells = "".join(
        f'<th class="num">{_e(c)}</th>' if c in numeric else f"<th>{_e(c)}</th>" for c in cols
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, css: str = ""
) -> str:
    cols = _columns(rows, columns)
    numeric = _numeric_columns(rows, cols)
    body = "".join(
        "<tr>" + "".join(_cell(r.get(c), c in numeric) for c in cols) + "</tr>" for r in rows
    )
    table = f'<table class="{css}">{_head(cols, numeric)}<tbody>{body}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


class Report:
    """Builds the report section by section; :meth:`write` saves it as one HTML file.

    Sections appear in the order they are added; the summary is always on top. Each ``add_*``
    method returns the report, so calls can be chained.
    """

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self.summary: dict[str, Any] = {}
        self._sections: list[str] = []

    # ------------------------------------------------------------ sections
    def add_summary(self, info: Mapping[str, Any]) -> Report:
        """Key facts shown under the title (dataset, backbone, strategy, time, ...)."""
        self.summary.update(info)
        return self

    def add_table(
        self,
        title: str,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        *,
        caption: str | None = None,
    ) -> Report:
        """A table with one row per mapping; ``columns`` picks and orders the keys."""
        note = f'<p class="caption">{_e(caption)}</p>' if caption else ""
        return self._section(title, _table(rows, columns) + note)

    def add_text(self, title: str, lines: Iterable[str]) -> Report:
        """Paragraph lines, e.g. the advisor's reasoning."""
        items = "".join(f"<li>{_e(line)}</li>" for line in lines)
        return self._section(title, f'<ul class="lines">{items}</ul>')

    def add_metrics(
        self, metrics: Mapping[str, Any], title: str = "Metrics", *, caption: str | None = None
    ) -> Report:
        """Metrics, flat (``{"accuracy": 0.9}``) or by split (``{"val": {...}, "test": {...}}``)."""
        if metrics and all(isinstance(v, Mapping) for v in metrics.values()):
            names: list[str] = []
            for values in metrics.values():
                names += [k for k in values if k not in names]
            rows = [
                {"metric": n, **{s: metrics[s].get(n) for s in metrics}, "meaning": _meaning(n)}
                for n in names
            ]
            cols = ["metric", *metrics, "meaning"]
        else:
            rows = [{"metric": n, "value": v, "meaning": _meaning(n)} for n, v in metrics.items()]
            cols = ["metric", "value", "meaning"]
        note = f'<p class="caption">{_e(caption)}</p>' if caption else ""
        return self._section(title, _table(rows, cols, "metrics") + note)

    def add_plan(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        strategy: str | None = None,
        notes: Iterable[str] = (),
        title: str = "Plan",
    ) -> Report:
        """The strategy as a stage × layer-group table of learning rates (0 = frozen).

        ``rows`` are :func:`graft.strategies.render.plan_rows`: ``stage``, ``epochs``, ``bn``,
        one column per layer group and optionally ``trainable`` parameters.
        """
        cols = _columns(rows, None)
        groups = [c for c in cols if c not in _PLAN_FIXED]
        lrs = [_lr(r.get(g)) for r in rows for g in groups]
        top = max((v for v in lrs if v), default=1.0)
        numeric = _numeric_columns(rows, cols) | set(groups)
        body = ""
        for r in rows:
            cells = [
                _lr_cell(r.get(c), top) if c in groups else _cell(r.get(c), c in numeric)
                for c in cols
            ]
            body += "<tr>" + "".join(cells) + "</tr>"
        table = f'<table class="plan">{_head(cols, numeric)}<tbody>{body}</tbody></table>'
        table = f'<div class="scroll">{table}</div>'
        lead = f'<p class="lead">strategy <b>{_e(strategy)}</b></p>' if strategy else ""
        legend = '<p class="caption">learning rate per layer group, input → output; <span class="frozen">frozen</span> = not trained in that stage</p>'
        extra = "".join(f"<li>{_e(n)}</li>" for n in notes)
        notes_html = f'<ul class="lines">{extra}</ul>' if extra else ""
        return self._section(title, lead + table + legend + notes_html)

    def add_comparison(
        self,
        rows: Sequence[Mapping[str, Any]],
        verdict: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        title: str = "Comparison",
    ) -> Report:
        """Baselines side by side, with a one-sentence verdict above the table."""
        box = f'<p class="verdict">{_e(verdict)}</p>' if verdict else ""
        return self._section(title, box + _table(rows, columns))

    def add_figure(self, title: str, figure: Any, caption: str | None = None) -> Report:
        """A matplotlib Figure (rendered to PNG) or PNG bytes, embedded as a data URI."""
        if isinstance(figure, bytes | bytearray):
            png = bytes(figure)
            if not png.startswith(_PNG_MAGIC):
                raise ConfigError(f"add_figure({title!r}): the bytes given are not a PNG image")
        elif hasattr(figure, "savefig"):
            from graft.evaluate.curves import figure_to_png_bytes

            png = figure_to_png_bytes(figure)
        else:
            raise ConfigError(
                f"add_figure({title!r}): expected a matplotlib Figure or PNG bytes, "
                f"got {type(figure).__name__}"
            )
        data = base64.b64encode(png).decode("ascii")
        cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
        img = f'<img src="data:image/png;base64,{data}" alt="{_e(title)}">'
        return self._section(title, f"<figure>{img}{cap}</figure>")

    def _section(self, title: str, body: str) -> Report:
        self._sections.append(f"<section><h2>{_e(title)}</h2>{body}</section>")
        return self

    # ------------------------------------------------------------ output
    def to_html(self) -> str:
        """The whole report as one HTML document."""
        from graft import __version__

        facts = {"generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), **self.summary}
        facts.setdefault("graft", __version__)
        cards = "".join(
            f'<div class="fact"><div class="k">{_e(k)}</div><div class="v">{_e(format_value(v))}</div></div>'
            for k, v in facts.items()
        )
        sub = f'<p class="subtitle">{_e(self.subtitle)}</p>' if self.subtitle else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(self.title)}</title><style>{CSS}</style></head><body><main>"
            f'<header><p class="brand">graft report</p><h1>{_e(self.title)}</h1>{sub}'
            f'<div class="facts">{cards}</div></header>'
            + "".join(self._sections)
            + f"<footer>graft {_e(__version__)}</footer></main></body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report atomically (a crash leaves the old file or none, never half)."""
        from graft.io import atomic_write_text

        return atomic_write_text(path, self.to_html())


def _meaning(name: str) -> str:
    key = METRICS.normalize(name)
    if key in METRICS:
        return METRICS.get(key).description
    if key.startswith("top") and key.endswith("_accuracy"):
        return f"true class among the {key[3:-9]} most likely"
    parts = [m for m in METRICS if key.startswith(f"{m}_")]
    if parts:
        m = max(parts, key=len)
        return f"{METRICS.get(m).description} ({key[len(m) + 1 :]})"
    return ""


def _lr(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def _lr_cell(value: Any, top: float) -> str:
    """A learning-rate cell; frozen greys out, trained shades by rate on a log scale."""
    v = _lr(value)
    if v == 0:
        return '<td class="num"><span class="frozen">frozen</span></td>'
    # four decades below the largest rate fade to the lightest shade
    depth = max(0.0, min(1.0, 1 + math.log10(v / top) / 4))
    alpha = 0.12 + 0.38 * depth
    text = value if isinstance(value, str) else f"{v:.1e}"
    return f'<td class="num lr" style="background:rgba(0,114,178,{alpha:.2f})">{_e(text)}</td>'
