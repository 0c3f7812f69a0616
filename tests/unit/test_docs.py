"""The docs site builds strictly (a broken link, anchor or nav entry fails it) and every link of
the README resolves in the checkout."""

import html.parser
import pathlib
import shutil
import subprocess
import sys
import urllib.parse

import markdown
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _build(config_dir: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=config_dir, capture_output=True, text=True, timeout=120,
    )


def test_the_docs_build_strictly(tmp_path):
    built = _build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "quickstart" / "index.html").is_file()


def test_a_broken_link_from_a_page_fails_the_build(tmp_path):
    # The site's settings and hook in a repository of their own, whose one page links to a file
    # of the repository that exists, then also to one that does not.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["nav"] = [{"Home": "index.md"}]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_repo_files.py", tmp_path / "scripts")
    (tmp_path / "Makefile").write_text("all:\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "index.md"
    page.write_text("# Home\n\n[make](../Makefile)\n")
    assert _build(tmp_path, tmp_path / "site").returncode == 0

    page.write_text(page.read_text() + "\n[gone](../benchmarks/results/gone.md)\n")
    built = _build(tmp_path, tmp_path / "site")
    assert built.returncode != 0
    assert "gone.md" in built.stderr


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.links.append(attrs["src"])
        if attrs.get("id"):
            self.ids.add(attrs["id"])


def _parse(path: pathlib.Path) -> _Links:
    parsed = _Links()
    parsed.feed(markdown.markdown(path.read_text(), extensions=["toc", "tables", "fenced_code"]))
    return parsed


def test_every_readme_link_resolves():
    readme = _parse(ROOT / "README.md")
    local = [link for link in readme.links if not urllib.parse.urlsplit(link).scheme]
    assert len(local) >= 10  # the docs pages and the figures' write-ups
    for link in local:
        path, _, anchor = link.partition("#")
        target = (ROOT / urllib.parse.unquote(path)).resolve() if path else ROOT / "README.md"
        assert target.is_relative_to(ROOT) and target.exists(), f"README links {link!r}: not found"
        if anchor and target.suffix == ".md":
            assert anchor in _parse(target).ids, f"README links {link!r}: no such heading"


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) < 150
