"""The README and docs/ say what is true: every Python block runs (the blocks of one page in order,
sharing their names, as a reader pastes them), every command in a shell block parses with the
real command line (its flags exist and its values are in range) or names a Makefile target or a
script that exists, and every relative link points to a file and heading that exist.

Shell commands are parsed, not run: `make demo` and the training commands take minutes, and the
tests of each command (tests/test_cli.py, tests/train/) run them at small sizes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks(page: Path, lang: str) -> list[str]:
    return [code for kind, code in FENCE.findall(page.read_text(encoding="utf-8")) if kind == lang]


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_pages_exist_and_the_readme_is_a_front_page():
    names = {_name(p) for p in PAGES}
    for doc in (
        "index",
        "sampler",
        "train",
        "learned-walker",
        "curricula",
        "vectors",
        "scale",
        "evidence",
        "development",
    ):
        assert f"docs/{doc}.md" in names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150
    # the two commands and a sampler snippet come before anything else
    assert readme.index("make demo") < readme.index("GraphWalkBatchSampler") < 3000


# ----------------------------------------------------------------------------- Python blocks


@pytest.fixture
def demo_index(tmp_path, monkeypatch):
    """The index `make demo` builds, where the pages say it is (out/mnist1d.gw), in a fresh
    working directory."""
    from graphwalk.cli import main

    monkeypatch.chdir(tmp_path)

    def build() -> None:
        argv = "index --dataset mnist1d --clusters 40 --graph er --graph knn-clusters --graph knn"
        argv += " --k 10 --groups labels --out out/mnist1d.gw --no-progress"
        assert main(argv.split()) == 0

    return build


PY_PAGES = [p for p in PAGES if _blocks(p, "python")]


@pytest.mark.slow  # the pages train small models (about a minute in all)
@pytest.mark.parametrize("page", PY_PAGES, ids=_name)
def test_python_blocks_run(page, demo_index, capsys):
    code = _blocks(page, "python")
    if any("out/mnist1d.gw" in c for c in code):
        demo_index()
    names: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"{_name(page)}[python block {i + 1}]", "exec"), names)
        except Exception as e:  # name the page and the block
            raise AssertionError(f"{_name(page)}, python block {i + 1} failed: {e!r}") from e


def test_the_readme_snippet_trains_on_every_item_once_per_epoch(tmp_path, monkeypatch, capsys):
    """The front page's snippet, as printed: it runs, and its loader covers the items."""
    monkeypatch.chdir(tmp_path)
    (block,) = _blocks(ROOT / "README.md", "python")
    names: dict[str, object] = {"__name__": "readme"}
    exec(compile(block, "README.md", "exec"), names)
    sampler = names["sampler"]
    items = sorted(i for batch in sampler for i in batch)
    assert items == list(range(1797))
    assert "batches per epoch" in capsys.readouterr().out


# ----------------------------------------------------------------------------- shell blocks


def _commands(page: Path) -> list[str]:
    """The commands of a page's bash blocks (continuation lines joined, comments dropped)."""
    out = []
    for block in _blocks(page, "bash"):
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.split("  #")[0].split(" # ")[0].strip()
            if cmd and not cmd.startswith("#"):
                out.append(cmd)
    return out


SHELL = [(p, c) for p in PAGES for c in _commands(p)]


def _targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w-]*):", text, re.M))


@pytest.mark.parametrize(("page", "command"), SHELL, ids=[f"{_name(p)}: {c}" for p, c in SHELL])
def test_shell_commands_parse(page, command, monkeypatch):
    from graphwalk.cli import build_parser

    argv = shlex.split(command)
    if argv[0] == "make":
        assert set(argv[1:]) <= _targets(), f"{_name(page)}: no such make target in {command!r}"
        return
    if "-m" in argv and argv[argv.index("-m") + 1] == "graphwalk":  # torchrun ... -m graphwalk
        argv = ["graphwalk", *argv[argv.index("-m") + 2 :]]
    if argv[0].endswith("python") and argv[1].startswith("bench/"):
        assert (ROOT / argv[1]).is_file(), f"{_name(page)}: {argv[1]} does not exist"
        return
    assert argv[0].endswith("graphwalk"), f"{_name(page)}: a command the test does not know"
    # a page may show the optional parts of a command in brackets: drop them
    argv = [a for a in argv[1:] if not (a.startswith("[") or a.endswith("]"))]
    parser = build_parser()
    errors: list[str] = []
    monkeypatch.setattr(
        type(parser), "error", lambda self, message: errors.append(message) or exit(2)
    )
    try:
        parser.parse_args(argv)
    except SystemExit:
        pass
    assert not errors, f"{_name(page)}: {command!r} does not parse: {errors}"


# ----------------------------------------------------------------------------- links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


LINKS = [
    (p, target)
    for p in PAGES
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", p.read_text(encoding="utf-8")))
    if not re.match(r"[a-z]+:", target)
]


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{_name(p)}->{t}" for p, t in LINKS])
def test_links_resolve(page, target):
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{_name(page)} links to {target}, which does not exist"
    if anchor:
        assert anchor in _anchors(dest), f"{_name(page)} links to a heading {target} lacks"
