"""``dlcli runs``: list, show, compare, diff, plot and remove run folders. Never imports torch or Lightning."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from dlcli.cli.common import DEBUG, err, escape, out, printable, user_errors

app = typer.Typer(help="List, show, compare, plot and remove runs (reads run folders only: fast).",
                  no_args_is_help=True)

OUTPUT_DIR = typer.Option("outputs", "--output-dir", "-o", metavar="DIR",
                          help="Where the run folders are (searched 3 levels deep, e.g. a sweep's own folder).")
SWEEP = typer.Option(None, "--sweep", metavar="S", help="Only the trials of this sweep (its name).",
                     show_default=False)
CV = typer.Option(None, "--cv", metavar="ID", help="Only the folds of this cross-validation (`dlcli cv`; its id): "
                                                  "the same as --filter cv.id=ID.", show_default=False)
FILTER = typer.Option(None, "--filter", metavar="KEY=VALUE",
                      help="Only runs where a config key, metric or summary field has this value (repeatable; "
                           "model=mlp, optimizer.lr=0.001, name=digits*).", show_default=False)
STATUS = typer.Option(None, "--status", metavar="S",
                      help="Only runs with this status: completed, running, failed, interrupted, dead.",
                      show_default=False)
FORMATS = ("table", "csv", "json", "markdown")


@app.command("ls")
def ls(
    sweep: str = SWEEP,
    cv: str = CV,
    filter: list[str] = FILTER,
    status: str = STATUS,
    tag: list[str] = typer.Option(None, "--tag", "-t", metavar="T", show_default=False,
                                  help="Only runs with this tag (repeatable: every tag given)."),
    output_dir: Path = OUTPUT_DIR,
    all_: bool = typer.Option(False, "--all", "-a", help="Also list empty run folders (a run killed just after "
                                                        "its folder was made leaves one); `runs rm` removes them."),
    debug: bool = DEBUG,
) -> None:
    """The runs, newest first: id, name, status, model, data, key metric, duration."""
    from dlcli.runs.table import find_empty_run_dirs, load_records, parse_filters

    broken: list[str] = []
    with user_errors(debug):
        _check_status(status, "empty")
        records = load_records(output_dir, sweep=sweep, status=status, filters=_cv_filter(cv, parse_filters(filter)),
                               broken=broken)
    _warn_broken(broken)
    records = [r for r in records if set(tag or ()) <= set(_tags(r.summary))]
    empty = find_empty_run_dirs(output_dir) if all_ and not tag and status in (None, "empty") else []
    records = records if status != "empty" else []
    if not records and not empty:
        with user_errors(debug):
            _check_filter_keys(output_dir, _cv_filter(cv, parse_filters(filter)))
        err.print(f"no runs under {escape(str(output_dir))} match", soft_wrap=True)
        return
    rows = [[(r.run_id, None), (str(r.summary.get("name", "")), None), (r.status, STATUS_STYLE.get(r.status)),
             (str(r.summary.get("model", "")), None), (str(r.summary.get("data", "")), None),
             (_key_metric(r.summary), None), (_duration(r.summary.get("duration_s")), None)] for r in records]
    rows += [[(path.name, None), ("", None), ("empty", "dim"), ("", None), ("", None), ("-", None), ("-", None)]
             for path in empty]
    _print_grid(["id", "name", "status", "model", "data", "key metric", "duration"], rows, right={"duration"})


@app.command("show")
def show(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, an id prefix, or `last`."),
    output_dir: Path = OUTPUT_DIR,
    debug: bool = DEBUG,
) -> None:
    """A run's config, final metrics, and per-epoch curves as sparklines."""
    from rich.table import Table

    from dlcli.runs import folder
    from dlcli.runs.sparkline import sparkline
    from dlcli.runs.table import read_metrics

    with user_errors(debug):
        run_dir, record = _run_record(run, output_dir)
        rows = read_metrics(run_dir)  # a damaged metrics.csv is named before anything is printed
    s = record.summary
    out.print(f"[bold]{escape(record.run_id)}[/]  {_status(record.status)}  {escape(str(run_dir))}")
    facts = [f"{k}: {s[k]}" for k in ("name", "task", "data", "model", "seed", "sweep", "trial", "epochs")
             if s.get(k) is not None]
    facts.append(f"duration: {_duration(s.get('duration_s'))}")
    if _tags(s):
        facts.append(f"tags: {', '.join(_tags(s))}")
    out.print(escape(", ".join(facts)), soft_wrap=True)
    if s.get("error"):
        out.print(f"[red]error:[/] {escape(str(s['error']))}", soft_wrap=True)
    if isinstance(s.get("note"), str):
        out.print(f"note: {escape(s['note'])}", soft_wrap=True)
    for line in _extras(run_dir):
        out.print(escape(line), soft_wrap=True)

    out.print("\n[bold]config[/]")
    config = run_dir / folder.CONFIG
    out.print(escape(config.read_text(encoding="utf-8", errors="replace").rstrip()) if config.is_file()
              else "(no config.yaml)",
              soft_wrap=True)

    metrics = Table(title="final metrics", title_justify="left", box=None, header_style="bold")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for key, value in sorted(record.metrics.items()):
        metrics.add_row(escape(key), escape(_num(value)))
    best = s.get("best") or {}
    if best.get("monitor"):
        epoch = best.get("epoch")
        metrics.add_row(f"best {escape(best['monitor'])}",  # epochs counted from 1 here, as `dlcli train` prints them
                        f"{escape(_num(best.get('value')))} (epoch {epoch + 1 if isinstance(epoch, int) else '?'})")
    out.print()
    out.print(metrics)

    curves = Table(title=f"per epoch ({len(rows)} epochs)", title_justify="left", box=None, header_style="bold")
    for column in ("metric", "curve", "first", "last", "min", "max"):
        curves.add_column(column, justify="left" if column in ("metric", "curve") else "right")
    for key in [k for k in (rows[0] if rows else {}) if k not in ("epoch", "step")]:
        values = [row.get(key, math.nan) for row in rows]
        finite = [v for v in values if math.isfinite(v)]
        curves.add_row(escape(key), sparkline(values), _num(values[0]), _num(values[-1]),
                       _num(min(finite)) if finite else "-", _num(max(finite)) if finite else "-")
    out.print()
    out.print(curves if rows else "(no epochs recorded: no metrics.csv)")


@app.command("compare")
def compare(
    runs: list[str] = typer.Argument(None, metavar="[RUN]...",
                                     help="Runs to compare (folders, ids, id prefixes, `last`); default: all "
                                          "the runs that --sweep and --filter select.", show_default=False),
    sweep: str = SWEEP,
    cv: str = CV,
    sort: str = typer.Option(None, "--sort", metavar="METRIC",
                             help="Sort by a metric, best first (val/acc: highest; val/loss: lowest), or by a "
                                  "config column.", show_default=False),
    filter: list[str] = FILTER,
    group_by: list[str] = typer.Option(None, "--group-by", metavar="KEY",
                                       help="Aggregate runs that share these config values (repeatable): "
                                            "repeated seeds become mean ± std and their count n.",
                                       show_default=False),
    format: str = typer.Option("table", "--format", "-f", help="table, csv, json or markdown."),
    status: str = STATUS,
    output_dir: Path = OUTPUT_DIR,
    debug: bool = DEBUG,
) -> None:
    """A row per run: only the config keys that differ between the runs, then the metrics; the best highlighted."""
    from dlcli.errors import DlcliError
    from dlcli.runs import compare as cmp
    from dlcli.runs.table import in_sweep, load_records, matches, parse_filters

    with user_errors(debug):
        if format not in FORMATS:
            raise DlcliError(f"--format {format}: choose one of {', '.join(FORMATS)}")
        _check_status(status)
        filters = _cv_filter(cv, parse_filters(filter))
        if runs:
            records = []
            for ref in runs:
                records.append(_run_record(ref, output_dir)[1])
            records = [r for r in records if (sweep is None or in_sweep(r, sweep))
                       and (status is None or r.status == status) and all(matches(r.value(k), v) for k, v in filters)]
        else:
            broken: list[str] = []
            records = load_records(output_dir, sweep=sweep, status=status, filters=filters, broken=broken)
            records = [r for r in records if _config_readable(r, broken)]  # a damaged config.json: left out
            _warn_broken(broken)
        comparison = cmp.compare(records, sort=sort, group_by=group_by or [])
    if format == "csv":
        typer.echo(printable(cmp.to_csv(comparison)), nl=False)  # JSON below escapes control characters itself
    elif format == "json":
        typer.echo(cmp.to_json(comparison), nl=False)
    elif format == "markdown":
        typer.echo(printable(cmp.to_markdown(comparison)), nl=False)
    else:
        _print_comparison(comparison)


@app.command("diff")
def diff(
    a: str = typer.Argument(..., metavar="A", help="The first run (folder, id, id prefix, `last`)."),
    b: str = typer.Argument(..., metavar="B", help="The second run; the change shown is B - A."),
    format: str = typer.Option("table", "--format", "-f", help="table, markdown or json."),
    output_dir: Path = OUTPUT_DIR,
    debug: bool = DEBUG,
) -> None:
    """What differs between two runs: config keys, final metrics (B - A), environment (versions, packages,
    CUDA), code (git commit, branch, dirty) and data (fingerprints)."""
    import json

    from dlcli.errors import DlcliError
    from dlcli.runs import diff as rdiff

    with user_errors(debug):
        if format not in ("table", "markdown", "json"):
            raise DlcliError(f"--format {format}: choose one of table, markdown, json")
        record_a, record_b = _run_record(a, output_dir)[1], _run_record(b, output_dir)[1]
        result = rdiff.diff(record_a, record_b)
    if format == "json":
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    if format == "markdown":
        typer.echo(printable(rdiff.to_markdown(result)), nl=False)
        return
    for section in rdiff.SECTIONS:
        rows = result[section]
        out.print(f"[bold]{section}[/]", highlight=False)
        if not rows:
            out.print("  (no differences)\n" if section != "metrics" else "  (no metrics)\n", highlight=False)
            continue
        heads = ["key", result["a"], result["b"], *(["change"] if section == "metrics" else [])]
        grid = [[(row["key"], None), (rdiff.cell(row["a"]), None), (rdiff.cell(row["b"]), None)]
                + ([(rdiff.cell(row["change"]), None)] if section == "metrics" else []) for row in rows]
        _print_grid(heads, grid, right=set(heads[1:]) if section == "metrics" else set())
        out.print()


@app.command("plot")
def plot(
    runs: list[str] = typer.Argument(..., metavar="RUN...",
                                     help="Runs to overlay (folders, ids, id prefixes, `last`)."),
    metric: list[str] = typer.Option(None, "--metric", "-m", metavar="M",
                                     help="Metric of metrics.csv to plot (repeatable); default: the runs' "
                                          "monitored metric (e.g. val/acc) and val/loss.", show_default=False),
    output: Path = typer.Option(Path("runs.png"), "--output", metavar="FILE.png",
                                help="The PNG to write, one panel per metric."),
    terminal: bool = typer.Option(True, "--terminal/--no-terminal", help="Also draw the curves in the terminal."),
    output_dir: Path = OUTPUT_DIR,
    debug: bool = DEBUG,
) -> None:
    """Learning curves of several runs overlaid: one PNG (matplotlib) and a plot in the terminal."""
    from rich.text import Text

    from dlcli.errors import DlcliError
    from dlcli.runs.sparkline import line_chart
    from dlcli.runs.table import read_metrics

    with user_errors(debug):
        if output.suffix.lower() != ".png":
            raise DlcliError(f"--output {output}: give a .png file")
        loaded = []
        for ref in runs:
            run_dir, record = _run_record(ref, output_dir)
            loaded.append((record, read_metrics(run_dir)))
        columns = {k for _, rows in loaded for row in rows for k in row}
        if metric:
            missing = [m for m in metric if m not in columns]
            if missing:
                raise DlcliError(f"--metric {', '.join(missing)}: not in these runs' metrics.csv. "
                                 f"Available: {', '.join(sorted(columns - {'epoch', 'step'})) or 'none'}")
            metrics = list(metric)
        else:
            monitors = [(r.summary.get("best") or {}).get("monitor") for r, _ in loaded]
            metrics = [m for m in dict.fromkeys([*monitors, "val/loss"]) if m in columns]
            if not metrics:
                raise DlcliError("these runs recorded no epoch yet (metrics.csv is empty or missing)")
        names = _labels([r for r, _ in loaded])
        curves = {m: {name: [row.get(m, math.nan) for row in rows] for name, (_, rows) in zip(names, loaded,
                                                                                               strict=True)}
                  for m in metrics}
        from dlcli.runs.plots import plot_runs

        written = plot_runs(curves, output)
    if terminal:
        for m, series in curves.items():
            out.print(f"\n[bold]{escape(m)}[/]")
            out.print(Text.assemble(*line_chart(series, width=min(70, max(20, out.width - 14)))), end="")
    out.print(f"\nplot: {escape(str(written))}")


@app.command("rm")
def rm(
    runs: list[str] = typer.Argument(..., metavar="RUN...", help="Runs to delete (folders, ids, id prefixes, `last`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    output_dir: Path = OUTPUT_DIR,
    debug: bool = DEBUG,
) -> None:
    """Delete run folders, after confirmation. Refuses folders that are not dlcli runs, and live runs."""

    from dlcli.errors import DlcliError
    from dlcli.runs import folder
    from dlcli.runs.table import find_empty_run_dirs, read_record, resolve

    with user_errors(debug):
        targets: list[Path] = []
        for ref in runs:
            given = Path(ref).expanduser()
            if given.is_symlink():  # never followed: its target may be anywhere, with anything beside it
                raise DlcliError(f"{ref} is a symlink (to {given.resolve()}): give the run folder itself; "
                                 "nothing was deleted")
            run_dir = resolve(ref, output_dir)
            broken: list[str] = []
            record = read_record(run_dir, broken)
            if broken and (run_dir / folder.SUMMARY).is_file():  # a damaged record: say what is wrong
                raise DlcliError(f"{broken[0]}: it is left alone; delete the folder by hand if it is yours to lose")
            empty = run_dir in find_empty_run_dirs(run_dir.parent)  # left by a kill: nothing to lose
            if not empty and (not (run_dir / folder.CONFIG).is_file()
                              or (record is None and not _is_lr_find(run_dir))):
                raise _not_a_run(run_dir)
            if not empty and not folder.made_by_dlcli(run_dir):
                raise DlcliError(f"{run_dir} was not made by dlcli (no {folder.MARKER} marker, and its run_id is "
                                 f"{record.run_id if record else '?'}): a copy or a folder of yours, left alone")
            if folder.is_claimed(run_dir):
                raise DlcliError(f"{run_dir} is held by a live process (it is being trained or resumed): stop "
                                 "it first; nothing was deleted")
            if record is not None and record.status == "running":
                raise DlcliError(f"{run_dir} is a live run (pid {record.summary.get('pid')} on "
                                 f"{record.summary.get('hostname')}): stop it first; nothing was deleted")
            if run_dir not in targets:
                targets.append(run_dir)
        for run_dir in targets:
            out.print(f"  {escape(str(run_dir))}", soft_wrap=True)
        if not yes and not _confirmed(f"Delete {len(targets)} run folder{'s' * (len(targets) != 1)}?"):
            err.print("nothing deleted")
            raise typer.Exit(1)
        _delete(targets)
    out.print(f"deleted {len(targets)} run folder{'s' * (len(targets) != 1)}")


def _delete(targets: list[Path]) -> None:
    """Delete run folders, each held (locked) while it goes: one a resume takes meanwhile is refused."""
    import shutil

    from dlcli.runs import folder

    for run_dir in targets:
        with folder.holding(run_dir, f"{run_dir} was taken by a live process meanwhile (a resume?): stop it "
                                     "first; it was not deleted"):
            shutil.rmtree(run_dir)


@app.command("prune")
def prune(
    older_than: str = typer.Option(None, "--older-than", metavar="AGE", show_default=False,
                                   help="Only runs started longer ago than this: 30d, 12h, 90m, 0d (all)."),
    status: str = typer.Option(None, "--status", metavar="S,...", show_default=False,
                               help="Only runs with one of these statuses, e.g. failed,dead,interrupted."),
    keep_best: int = typer.Option(None, "--keep-best", metavar="K", show_default=False,
                                  help="Keep the K best runs by --by (of those the other options select)."),
    by: str = typer.Option(None, "--by", metavar="METRIC", show_default=False,
                           help="The final metric --keep-best ranks by (val/acc: highest best; val/loss: lowest)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete them; without it, only list what would go."),
    output_dir: Path = OUTPUT_DIR,
    debug: bool = DEBUG,
) -> None:
    """List (and with --yes delete) old, failed or outranked runs; never a live run or one tagged keep."""
    import time

    from dlcli.errors import DlcliError
    from dlcli.registry import did_you_mean
    from dlcli.runs import folder
    from dlcli.runs.direction import metric_mode
    from dlcli.runs.table import load_records

    with user_errors(debug):
        if older_than is None and status is None and keep_best is None:
            raise DlcliError("runs prune: say which runs go: --older-than AGE, --status S,... and/or "
                             "--keep-best K --by METRIC")
        if (keep_best is None) != (by is None) or (keep_best is not None and keep_best < 0):
            raise DlcliError("runs prune: --keep-best K (K >= 0) and --by METRIC go together")
        max_age = _age_seconds(older_than) if older_than is not None else None
        statuses = {x.strip() for x in status.split(",") if x.strip()} if status is not None else None
        for s in sorted(statuses or ()):
            _check_status(s)
        broken: list[str] = []
        records = load_records(output_dir, broken=broken)
        _warn_broken(broken)
        now = time.time()
        chosen = []
        for r in records:
            started = folder.started_at(r.path)
            if statuses is not None and r.status not in statuses:
                continue
            if max_age is not None and (started is None or now - started < max_age):
                continue
            chosen.append(r)
        unranked = []  # runs without the metric: nothing outranks them, so --keep-best never deletes them
        if keep_best is not None:
            scored = [r for r in chosen if isinstance(r.metrics.get(by), int | float)]
            if chosen and not scored:
                known = sorted({m for r in chosen for m in r.metrics})
                raise DlcliError(f"runs prune: --by {by!r}: none of the {len(chosen)} runs selected has this final "
                                 f"metric, so none can be ranked.{did_you_mean(by, known)} Their metrics: "
                                 f"{', '.join(known[:20]) or 'none'}")
            sign = -1 if metric_mode(by) == "max" else 1
            kept = {id(r) for r in sorted(scored, key=lambda r: sign * r.metrics[by])[:keep_best]}
            unranked = [r for r in chosen if r not in scored]
            chosen = [r for r in scored if id(r) not in kept]
        for r in unranked:
            err.print(f"  kept {escape(r.run_id)} (no {escape(by)} to rank it by)", soft_wrap=True, highlight=False)
        spared = [r for r in chosen if r.status == "running" or folder.is_claimed(r.path)
                  or "keep" in _tags(r.summary) or not folder.made_by_dlcli(r.path)]
        targets = [r.path for r in chosen if r not in spared]
        for r in spared:
            why = "tagged keep" if "keep" in _tags(r.summary) else "live" if r.status == "running" or \
                folder.is_claimed(r.path) else "not made by dlcli"
            err.print(f"  kept {escape(r.run_id)} ({why})", soft_wrap=True, highlight=False)
        for run_dir in targets:
            out.print(f"  {escape(str(run_dir))}", soft_wrap=True)
        if not yes:
            out.print(f"{len(targets)} run folder{'s' * (len(targets) != 1)} would be deleted: "
                      "run again with --yes to delete them")
            return
        _delete(targets)
    out.print(f"deleted {len(targets)} run folder{'s' * (len(targets) != 1)}")


def _age_seconds(text: str) -> float:
    """'30d', '12h', '90m', '45s' as seconds; DlcliError for anything else."""
    import re

    from dlcli.errors import DlcliError

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms])\s*", text)
    if not m:
        raise DlcliError(f"--older-than {text!r}: give a number and a unit, e.g. 30d, 12h, 90m")
    return float(m.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[m.group(2)]


def _is_lr_find(run_dir: Path) -> bool:
    """Whether the folder holds a `dlcli lr-find` result (a run folder of its own, removable like a run)."""
    from dlcli.runs import folder

    try:
        summary = folder.read_json(run_dir / folder.SUMMARY)
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("kind") == "lr_find"


def _confirmed(question: str) -> bool:
    """The user's yes or no; DlcliError when there is no one to ask (stdin is not a terminal, or ended)."""
    from dlcli.errors import DlcliError

    try:
        return typer.confirm(question)
    except typer.Abort:  # end of input (no terminal: a script, a pipe, cron) or Ctrl-C
        raise DlcliError("no answer to the confirmation (stdin is not a terminal, or it ended): pass --yes to "
                         "delete without asking; nothing was deleted") from None


def _print_comparison(comparison) -> None:
    from dlcli.runs.compare import cell, columns, is_best

    cols = columns(comparison)
    rows = [[(cell(comparison, row, c), "bold green" if is_best(comparison, row, c) else
              STATUS_STYLE.get(row[c]) if c == "status" else None) for c in cols] for row in comparison.rows]
    _print_grid(cols, rows, right={*comparison.metric_keys, "n"})
    if comparison.best and len(comparison.rows) > 1 and out.color_system is not None:
        out.print("[dim]best value of each metric in [/][bold green]bold green[/]")  # colour shows only there


def _print_grid(headers: list[str], rows: list[list[tuple[str, str | None]]], right: set[str] = frozenset()) -> None:
    """A plain aligned table, whole (never cut to the terminal's width), with styled cells.

    Hand-made rather than a rich Table: rich measures every cell and takes ~2 s for 1,000 rows; this takes 50 ms.
    """
    from rich.text import Text

    headers, right = [printable(h, keep="") for h in headers], {printable(h, keep="") for h in right}
    rows = [[(printable(value, keep=""), style) for value, style in row] for row in rows]  # text from run files
    widths = [max([len(h), *(len(row[i][0]) for row in rows)]) for i, h in enumerate(headers)]
    text = Text()
    for line in [[(h, "bold") for h in headers], *rows]:
        for i, ((value, style), width, header) in enumerate(zip(line, widths, headers, strict=True)):
            text.append(value.rjust(width) if header in right else value.ljust(width), style=style)
            text.append("  " if i < len(widths) - 1 else "\n")
    out.print(text, soft_wrap=True, end="")


def _extras(run_dir: Path) -> list[str]:
    """What `dlcli eval` added to the run: its report (--report) and tuned threshold (--tune-threshold)."""
    import json

    lines = []
    report = run_dir / "report" / "report.md"
    if report.is_file():
        lines.append(f"report: {report} (dlcli eval --report)")
    threshold = run_dir / "threshold.json"
    if threshold.is_file():
        try:
            saved = json.loads(threshold.read_text(encoding="utf-8"))
            t = saved["threshold"]
            shown = ", ".join(f"{v:.4f}" for v in t) if isinstance(t, list) else f"{t:.4f}"
            lines.append(f"threshold: {shown} (tuned for {saved.get('criterion')} on the validation split; "
                         "predict and export decide with it)")
        except (OSError, ValueError, KeyError, TypeError) as e:
            lines.append(f"threshold: {threshold} is unreadable ({type(e).__name__}): predict refuses the run "
                         "until it is tuned again")
    return lines


def _not_a_run(run_dir: Path):
    from dlcli.errors import DlcliError

    return DlcliError(f"{run_dir} is not a dlcli run folder (no readable summary.json with a run_id): left alone")


def _run_record(ref: str, output_dir: Path):
    """(run folder, its record) for a RUN reference; a folder that is not a run is an error."""
    from dlcli.runs.table import read_record, resolve

    run_dir = resolve(ref, output_dir)
    broken: list[str] = []
    record = read_record(run_dir, broken)
    if broken and (run_dir / "summary.json").is_file():
        from dlcli.errors import DlcliError

        raise DlcliError(f"{broken[0]}: the run's record is damaged; its other files are left as they are")
    if record is None:
        raise _not_a_run(run_dir)
    return run_dir, record


def _tags(summary: dict) -> list[str]:
    tags = summary.get("tags")
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _edit_summary(ref: str, output_dir: Path, change) -> Path:
    """Apply ``change(summary)`` to a run's summary.json, holding the run meanwhile; a live run is refused (its
    trainer rewrites summary.json from memory, so the change would be lost)."""
    from dlcli.runs import folder

    run_dir, _ = _run_record(ref, output_dir)
    with folder.holding(run_dir, f"{run_dir.name} is being trained or resumed: change its tags or note when it "
                                 "has stopped"):
        summary = folder.read_summary(run_dir)
        change(summary)
        folder.write_json(run_dir / folder.SUMMARY, summary)
    return run_dir


TAG = typer.Argument(..., metavar="TAG...", help="Tags: words such as best, baseline or keep.")


def _check_tags(tags: list[str]) -> list[str]:
    from dlcli.config.validate import tag_problem
    from dlcli.errors import DlcliError

    for t in tags:
        if tag_problem(t):
            raise DlcliError(tag_problem(t))
    return tags


@app.command("tag")
def tag_command(run: str = typer.Argument(..., metavar="RUN"), tags: list[str] = TAG,
                output_dir: Path = OUTPUT_DIR, debug: bool = DEBUG) -> None:
    """Add tags to a run (`runs ls --tag T` finds it; `runs prune` never deletes a run tagged keep)."""
    with user_errors(debug):
        _check_tags(tags)
        run_dir = _edit_summary(run, output_dir, lambda s: s.update(tags=list(dict.fromkeys([*_tags(s), *tags]))))
    out.print(f"{escape(run_dir.name)}: tagged {escape(', '.join(tags))}", soft_wrap=True)


@app.command("untag")
def untag_command(run: str = typer.Argument(..., metavar="RUN"), tags: list[str] = TAG,
                  output_dir: Path = OUTPUT_DIR, debug: bool = DEBUG) -> None:
    """Remove tags from a run."""
    had: list[str] = []

    def untag(summary: dict) -> None:
        had.extend(_tags(summary))
        summary.update(tags=[t for t in _tags(summary) if t not in tags])

    with user_errors(debug):
        run_dir = _edit_summary(run, output_dir, untag)
    removed, absent = [t for t in tags if t in had], [t for t in tags if t not in had]
    if removed:
        out.print(f"{escape(run_dir.name)}: untagged {escape(', '.join(removed))}", soft_wrap=True)
    if absent:
        left = [t for t in had if t not in tags]
        err.print(f"{escape(run_dir.name)} had no tag {escape(', '.join(absent))} (its tags: "
                  f"{escape(', '.join(left)) or 'none'})", soft_wrap=True)


@app.command("note")
def note_command(run: str = typer.Argument(..., metavar="RUN"),
                 text: str = typer.Argument(..., metavar="TEXT", help="The note; \"\" removes it."),
                 output_dir: Path = OUTPUT_DIR, debug: bool = DEBUG) -> None:
    """Attach a note to a run (shown by `runs show`)."""
    with user_errors(debug):
        run_dir = _edit_summary(run, output_dir, lambda s: s.update(note=text or None))
    out.print(f"{escape(run_dir.name)}: note {'saved' if text else 'removed'}", soft_wrap=True)


def _config_readable(record, broken: list[str]) -> bool:
    from dlcli.runs import folder

    try:
        record.flat_config  # noqa: B018 -- read (and kept) now, so a damaged file is found here
    except folder.RunFileError as e:
        broken.append(str(e))
        return False
    return True


def _warn_broken(broken: list[str]) -> None:
    """One line for each run left out of a listing because its summary.json is unreadable or damaged."""
    for message in broken:
        err.print(f"warning: skipped {escape(message)}", soft_wrap=True, highlight=False)


def _labels(records) -> list[str]:
    """Short, distinct legend labels: the run ids (shown as written)."""
    return [printable(r.run_id, keep="") for r in records]


STATUS_STYLE = {"completed": "green", "running": "cyan", "failed": "red", "dead": "red", "interrupted": "yellow",
                "pruned": "blue"}


def _check_status(status: str | None, *more: str) -> None:
    """--status names a run status (or one of ``more``); a DlcliError with the closest one otherwise."""
    from dlcli.errors import DlcliError
    from dlcli.registry import did_you_mean

    known = [*STATUS_STYLE, *more]
    if status is not None and status not in known:
        raise DlcliError(f"--status {status!r} is no run status.{did_you_mean(status, known)} "
                         f"Statuses: {', '.join(known)}")


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{escape(status)}[/]" if style else escape(status)


def _key_metric(summary: dict) -> str:
    """The monitored metric's best value (``val/acc 0.9611``), else the first final test metric."""
    best = summary.get("best") or {}
    if best.get("monitor") and best.get("value") is not None:
        return f"{best['monitor']} {_num(best['value'])}"
    tests = sorted(k for k in summary.get("metrics") or {} if k.startswith("test/"))
    return f"{tests[0]} {_num(summary['metrics'][tests[0]])}" if tests else "-"


def _num(value) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _duration(seconds) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _check_filter_keys(output_dir: Path, filters: list[tuple[str, str]]) -> None:
    """When nothing matched: a DlcliError for a --filter key (or --cv id) that no run under ``output_dir`` has
    at all, a typo rather than a value no run has."""
    from dlcli.errors import DlcliError
    from dlcli.registry import did_you_mean
    from dlcli.runs.table import load_records

    records = load_records(output_dir)
    if not records or not filters:
        return
    for key, wanted in filters:
        if key == "cv.id":
            ids = sorted({str(r.value("cv.id")) for r in records if r.value("cv.id") is not None})
            if not any(str(r.value(key)) == wanted for r in records):
                raise DlcliError(f"--cv {wanted!r}: no cross-validation under {output_dir} has this id."
                                 f"{did_you_mean(wanted, ids)} Its cv ids: {', '.join(ids[:10]) or 'none'}")
        elif all(r.value(key) is None for r in records):
            known = sorted({k for r in records for k in (*r.metrics, *r.flat_config, *r.summary)})
            raise DlcliError(f"--filter {key}={wanted}: no run under {output_dir} has a config key, metric or "
                             f"summary field '{key}'.{did_you_mean(key, known)}")


def _cv_filter(cv: str | None, filters: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """--cv ID as the filter it stands for: the folds' config says their cv id (cv.id)."""
    return filters if cv is None else [*filters, ("cv.id", cv)]
