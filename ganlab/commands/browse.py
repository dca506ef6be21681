"""`ganlab browse run=<run dir or sweep dir> [out=<page.html>]`: a static HTML page to open in a browser, no
server and no network (ganlab/browse/). For one run: its sample grids over training with a step slider, the
loss and metric curves, an interpolation strip, one row per class (conditional runs), generated samples beside
their nearest real images, and the config. For a sweep: a page per run and an index of the runs, best first by
the monitored metric, linking to them. Each page is written whole or not at all."""

from __future__ import annotations

from pathlib import Path

from ganlab.browse.page import run_page
from ganlab.browse.sweep import sweep_page
from ganlab.checkpoint import run_dir_of
from ganlab.commands.options import parse_options
from ganlab.commands.output import check_writable, output_file, write_atomically
from ganlab.commands.schemas import BrowseOptions
from ganlab.errors import ConfigError
from ganlab.runs import find_runs, is_run_dir, read_runs

PAGE = "browse.html"


def main(args: list[str]) -> None:
    opts = parse_options(BrowseOptions, args, "browse")
    given = Path(opts.run).expanduser()
    if given.is_file() and run_dir_of(given) is not None:  # a run's checkpoint, as sample and eval take: its run
        given = run_dir_of(given)
    if not given.is_dir():
        what = "a file" if given.exists() else "no such directory"
        raise ConfigError(f"run={given}: {what}; give a run directory or a sweep's.")
    out = output_file(opts.out) if opts.out else given / PAGE
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"out={out}: the page is HTML; name it *.html.")
    check_writable(out)
    if is_run_dir(given):
        write_page(out, run_page(given, out))
        print(f"wrote {out}: open it in a browser")
        return
    run_dirs = find_runs([given], "ganlab browse")  # a ConfigError when there is none
    runs = read_runs(run_dirs)
    pages = {}
    for run, folder in zip(runs, run_dirs, strict=True):
        pages[run.name] = folder / PAGE
        write_page(folder / PAGE, run_page(folder, folder / PAGE))
    write_page(out, sweep_page(runs, pages, out))
    print(f"wrote {out} and a page in each of the {len(runs)} runs: open it in a browser")


def write_page(path: Path, text: str) -> None:
    write_atomically(path, lambda f: f.write(text.encode()))
