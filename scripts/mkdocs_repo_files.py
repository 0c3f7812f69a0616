"""mkdocs hook: the docs pages link to the repository's own files (benchmark write-ups, the
model card, configs) as ../PATH, which works in a checkout and on a forge. mkdocs resolves only
links into docs/, so every file of the checkout outside docs/ (as git lists it: tracked, or
untracked and not ignored) is registered as an excluded file. A link to one that exists then
passes the strict build (logged at info); a link to one that does not is a warning, which fails
it."""

import pathlib
import subprocess

from mkdocs.structure.files import File, Files, InclusionLevel


def _repo_files(root: pathlib.Path) -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root, capture_output=True, check=True,
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a checkout: every file but hidden ones
        listed = [str(p.relative_to(root)) for p in root.rglob("*")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return [path for path in listed if path and (root / path).is_file()]


def on_files(files: Files, config) -> Files:
    docs = pathlib.Path(config.docs_dir).resolve()
    root = pathlib.Path(config.config_file_path).resolve().parent
    for path in _repo_files(root):
        absolute = (root / path).resolve()
        if absolute.is_relative_to(docs):
            continue
        files.append(File(
            pathlib.Path("..", path).as_posix(), src_dir=str(docs), dest_dir=config.site_dir,
            use_directory_urls=config.use_directory_urls, inclusion=InclusionLevel.EXCLUDED,
        ))
    return files
