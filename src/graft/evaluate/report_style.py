"""The report's inline stylesheet: system fonts, one readable column, light tables."""

from __future__ import annotations

CSS = """
:root { --ink:#1f2933; --muted:#6b7785; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
  --accent:#0072B2; --accent-soft:#e6f1f8; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1040px; margin:0 auto; padding:32px 24px 48px; }
header { margin-bottom:20px; }
.brand { margin:0; color:var(--accent); font-weight:600; font-size:12px;
  letter-spacing:.08em; text-transform:uppercase; }
h1 { margin:4px 0 4px; font-size:28px; line-height:1.25; letter-spacing:-.01em; }
.subtitle { margin:0 0 8px; color:var(--muted); }
.facts { display:flex; flex-wrap:wrap; gap:10px; margin-top:16px; }
.fact { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:8px 14px; min-width:120px; }
.fact .k { color:var(--muted); font-size:11px; text-transform:uppercase; letter-spacing:.06em; }
.fact .v { font-weight:600; font-variant-numeric:tabular-nums; overflow-wrap:anywhere; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:18px 22px 20px; margin:16px 0; box-shadow:0 1px 2px rgba(16,24,40,.04); }
h2 { margin:0 0 12px; font-size:17px; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:14px; }
th { text-align:left; color:var(--muted); font-weight:600; font-size:12px;
  text-transform:uppercase; letter-spacing:.04em; border-bottom:1px solid var(--line);
  padding:6px 10px; white-space:nowrap; }
td { padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
tbody tr:last-child td { border-bottom:none; }
tbody tr:hover td { background:#fafbfc; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
th.num { text-align:right; }
td.na { color:#9aa5b1; }
table.metrics td:last-child { color:var(--muted); }
table td:first-child { color:var(--ink); font-weight:500; }
table.plan td.lr { color:var(--ink); }
.frozen { display:inline-block; padding:0 8px; border-radius:999px; background:#eef0f3;
  color:var(--muted); font-size:12px; }
.lead { margin:0 0 10px; }
.caption, figcaption { color:var(--muted); font-size:13px; margin:10px 0 0; }
.verdict { margin:0 0 14px; padding:10px 14px; background:var(--accent-soft);
  border-left:3px solid var(--accent); border-radius:4px; font-weight:500; }
ul.lines { margin:0; padding-left:20px; }
ul.lines li { margin:2px 0; }
figure { margin:0; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto; }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:28px; }
"""
