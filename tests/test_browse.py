"""`ganlab browse`: a run's page and a sweep's index, read back as HTML; in a real headless Chromium under -m slow."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from tests.conftest import exits_2

FAST = ["debug=fast", "trainer.device=cpu"]


class Page(HTMLParser):
    """The tags of a page, and every file it references (src=, href=)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "img", "input", "br", "link"):  # HTML's void elements
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))  # <rect ... />: opens and closes itself

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def references(self) -> list[str]:
        return [a[k] for _, a in self.tags for k in ("src", "href") if a.get(k)]  # type: ignore[misc]

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def read_page(path: Path) -> Page:
    page = Page(path.read_text())
    assert page.open == [], f"unclosed tags: {page.open}"
    for ref in page.references():  # only files, each of them there: no network, no server
        assert "://" not in ref and not ref.startswith("//"), ref
        assert (path.parent / ref).is_file(), ref
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-conditional DCGAN on digits, evaluated at its end: every section of the page has something."""
    root = tmp_path_factory.mktemp("browse") / "run"
    main(["train", *FAST, "model.conditional=true", "trainer.steps=6", "trainer.eval_every=6", "trainer.eval_n=100",
          f"hydra.run.dir={root}"])  # fmt: skip
    return root


def test_a_run_page_shows_samples_over_training_curves_figures_and_config(run: Path) -> None:
    main(["browse", f"run={run}"])
    page = read_page(run / "browse.html")
    grids = sorted((run / "samples").glob("step_*.png"))
    (slider,) = page.find("input", type="range")
    assert (slider["min"], slider["max"]) == ("0", str(len(grids) - 1))
    (grid,) = page.find("img", id="grid")
    assert grid["src"] == "samples/step_0000006.png" and grid["data-step"] == "6"
    text = (run / "browse.html").read_text()
    assert all(f'"src": "samples/{p.name}"' in text for p in grids)  # the slider's steps
    labels = {a["aria-label"] for a in page.find("svg")}
    assert {"loss/D", "loss/G", "metrics/fid_digits", "metrics/class_kl"} <= labels
    with Image.open(run / "browse" / "interpolation.png") as strip:  # 4 rows of 8 digits of 16 px, enlarged
        factor = strip.size[0] // (2 + 8 * 18)
        assert strip.size == (factor * (2 + 8 * 18), factor * (2 + 4 * 18))
    with Image.open(run / "browse" / "classes.png") as rows:
        assert rows.size == (3 * (2 + 8 * 18), 3 * (2 + 10 * 18))  # one row per class, 8 columns; enlarged 3 times
    assert "Nearest real neighbours" in text and "nearest images (pixel L2) among 1797 real ones" in text
    assert "model:" in text and "conditional: true" in text  # the config


def test_a_sweep_index_ranks_its_runs_and_links_their_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep"
    main(["train", "-m", *FAST, "model=mlp", "data=gaussians", "trainer.eval_every=4", "trainer.eval_n=200",
          "optimizer.lr_g=1e-3,4e-3", f"hydra.sweep.dir={sweep}"])  # fmt: skip
    main(["browse", f"run={sweep}", f"out={tmp_path / 'index.html'}"])
    page = read_page(tmp_path / "index.html")
    links = [a["href"] for a in page.find("a")]
    kl = {job: load_checkpoint(sweep / job / "checkpoints" / "last.pt")["metrics"]["kl_all"] for job in ("0", "1")}
    assert links == [f"sweep/{job}/browse.html" for job in sorted(kl, key=kl.get)]  # best first
    assert "best first by kl_all" in (tmp_path / "index.html").read_text()
    for job in ("0", "1"):
        job_page = read_page(sweep / job / "browse.html")
        assert job_page.find("input", type="range")
        assert "drawn for image generators" in (sweep / job / "browse.html").read_text()  # 2-D: no strips


def test_bad_input_exits_2_and_writes_nothing(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no such directory" in exits_2(["browse", f"run={tmp_path / 'nope'}"], capsys)
    assert "name it *.html" in exits_2(["browse", f"run={run}", f"out={tmp_path / 'page.txt'}"], capsys)
    (tmp_path / "empty").mkdir()
    assert "ganlab browse: no ganlab runs in" in exits_2(["browse", f"run={tmp_path / 'empty'}"], capsys)
    (tmp_path / "notes.txt").write_text("not a run")
    assert "notes.txt: a file; give a run directory" in exits_2(["browse", f"run={tmp_path / 'notes.txt'}"], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt"]


def test_a_checkpoint_stands_for_its_run(run: Path, tmp_path: Path) -> None:
    """As sample and eval take it: run=<run>/checkpoints/last.pt browses <run>."""
    main(["browse", f"run={run / 'checkpoints' / 'last.pt'}", f"out={tmp_path / 'page.html'}"])
    assert read_page(tmp_path / "page.html").find("input", type="range")


CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const loaded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  const slider = document.getElementById("step"), grid = document.getElementById("grid");
  const before = grid.dataset.step;
  grid.addEventListener("load", () => {
    document.body.dataset.result = JSON.stringify(
      {images: images.length, loaded, before, after: grid.dataset.step, width: grid.naturalWidth});
  });
  slider.value = 0;
  slider.dispatchEvent(new Event("input"));
});
</script>
"""


@pytest.mark.slow
def test_the_page_in_a_headless_chromium(run: Path, tmp_path: Path) -> None:
    """Chromium (the Debian package `chromium`) opens the page from disk: a screenshot, every image decoded
    (naturalWidth > 0), and moving the slider to its first position shows the first step's grid."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Chromium: apt-get install chromium (see the README's Tests section)")
    main(["browse", f"run={run}"])
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    shot = tmp_path / "page.png"
    done = subprocess.run([*flags, "--window-size=1100,1600", f"--screenshot={shot}", (run / "browse.html").as_uri()],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(shot) as picture:
        assert picture.size == (1100, 1600) and len(set(picture.convert("L").getdata())) > 10  # not blank
    probe = run / "browse_probe.html"  # beside the page, so that its relative paths resolve the same
    probe.write_text((run / "browse.html").read_text() + CHECK_SCRIPT)
    done = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    probe.unlink()
    marker = 'data-result="'
    assert marker in done.stdout, done.stderr
    raw = done.stdout.split(marker, 1)[1].split('"', 1)[0].replace("&quot;", '"')
    result = json.loads(raw)
    assert result["images"] == 4 and result["loaded"] == 4  # the grid, interpolation, classes, neighbours
    first = sorted((run / "samples").glob("step_*.png"))[0]
    assert result["before"] == "6" and result["after"] == str(int(first.stem.split("_")[-1])) and result["width"] > 0
