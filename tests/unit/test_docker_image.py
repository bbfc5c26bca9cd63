"""The Docker image holds every package pyproject.toml lists, checked on the files (no Docker
engine needed): the build context as .dockerignore leaves it, copied as the Dockerfile's
COPY instructions copy it, must hold each packaged module where `pip install .` runs; and
the packaged code imports no module of this repository that is not packaged."""

from __future__ import annotations

import ast
import os
import re
import shlex
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]


def _packages() -> list[str]:
    """The packages setuptools finds with pyproject's include patterns (as its
    find_packages: only directories with an __init__.py, walked from the top)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    found, pending = [], [REPO]
    while pending:
        folder = pending.pop()
        for child in sorted(folder.iterdir()):
            if not child.is_dir() or "." in child.name or not (child / "__init__.py").exists():
                continue
            name = ".".join(child.relative_to(REPO).parts)
            if any(fnmatchcase(name, pattern) for pattern in include):
                found.append(name)
            pending.append(child)
    return sorted(found)


def _modules(packages: list[str]) -> list[str]:
    """The packaged modules' paths, relative to the repository."""
    return sorted(
        str(PurePosixPath(*package.split("."), path.name))
        for package in packages
        for path in (REPO / package.replace(".", "/")).glob("*.py")
    )


class _DockerIgnore:
    """The .dockerignore rules as Docker reads them: patterns anchored at the context's
    root, `*` and `?` within a path segment, `**` any number of segments, `!` keeps; a
    path is left out when the last rule that matches it or one of its parent folders
    leaves it out."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            if re.search(r"[\[\\]", pattern):
                raise AssertionError(f"this test does not read .dockerignore's {line!r}")
            self.rules.append((keep, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        parts = []
        for segment in pattern.split("/"):
            if segment == "**":
                parts.append("(?:[^/]+/)*")
            else:
                text = re.escape(segment).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
                parts.append(text + "/")
        return "^" + "".join(parts).removesuffix("/") + "$"

    def ignored(self, path: str) -> bool:
        folders = path.split("/")[:-1]
        candidates = [path, *("/".join(folders[: i + 1]) for i in range(len(folders)))]
        left_out = False
        for keep, rule in self.rules:
            if any(rule.match(candidate.rstrip("/")) for candidate in candidates):
                left_out = not keep
        return left_out


def _context(ignore: _DockerIgnore) -> list[str]:
    """The build context's files, relative to the repository."""
    may_keep = any(keep for keep, _ in ignore.rules)
    files = []
    for root, folders, names in os.walk(REPO):
        relative = Path(root).relative_to(REPO)
        if not may_keep:  # a folder left out cannot hold a file kept
            folders[:] = [f for f in folders if not ignore.ignored(str(relative / f))]
        files += [
            path
            for name in names
            if not ignore.ignored(path := str(PurePosixPath(*relative.parts, name)))
        ]
    return files


def _image(dockerfile: str, context: list[str]) -> tuple[set[str], str]:
    """The image's files from the context (by COPY and ADD of local sources) and the
    folder `pip install .` runs in."""
    image: set[str] = set()
    workdir, installed_in = "/", ""
    for line in re.sub(r"\\\n", " ", dockerfile).splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        instruction, arguments = words[0].upper(), words[1:]
        if instruction == "WORKDIR":
            workdir = str(PurePosixPath(workdir, arguments[0]))
        elif instruction in ("COPY", "ADD"):
            assert not any(a.startswith("--from") for a in arguments), "a copy from another stage"
            *sources, target = [a for a in arguments if not a.startswith("--")]
            destination = PurePosixPath(workdir, target)
            for source in sources:
                folder = os.path.normpath(source)
                for path in context:
                    if folder == ".":
                        image.add(str(destination / path))
                    elif path == folder:
                        into_folder = target.endswith("/") or len(sources) > 1
                        image.add(
                            str(destination / Path(path).name if into_folder else destination)
                        )
                    elif path.startswith(folder + "/"):
                        image.add(str(destination / path.removeprefix(folder + "/")))
        elif instruction == "RUN" and re.search(r"\bpip install \.(\s|$)", line):
            installed_in = workdir
    return image, installed_in


def test_the_image_holds_every_packaged_module() -> None:
    packages = _packages()
    assert {"api", "audit", "bootstrap", "cli", "demo", "domain"} <= set(packages)
    ignore = _DockerIgnore((REPO / ".dockerignore").read_text())
    image, installed_in = _image((REPO / "Dockerfile").read_text(), _context(ignore))
    assert installed_in, "the Dockerfile runs no `pip install .`"
    wanted = ["pyproject.toml", "README.md", *_modules(packages)]
    missing = [path for path in wanted if str(PurePosixPath(installed_in, path)) not in image]
    assert not missing, f"not in the image where `pip install .` runs: {missing[:10]}"


def test_packaged_code_imports_only_packaged_modules() -> None:
    packages = set(_packages())
    ours = {path.name for path in REPO.iterdir() if path.is_dir() or path.suffix == ".py"}
    strays = set()
    for module in _modules(sorted(packages)):
        tree = ast.parse((REPO / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            strays |= {
                f"{module} imports {name}"
                for name in names
                if name.split(".")[0] in ours and name.split(".")[0] not in packages
            }
    assert not strays, sorted(strays)


@pytest.mark.parametrize(
    ("dockerfile", "lacking"),
    [
        # The list this image had: three packages missing, the image could not start.
        ("WORKDIR /app\nCOPY pyproject.toml README.md ./\nCOPY api api\nRUN pip install .", True),
        ("WORKDIR /app\nCOPY . .\nRUN pip install .", False),
        ("WORKDIR /app\nCOPY . /src\nRUN pip install .", True),
    ],
)
def test_the_check_sees_a_copy_list_that_lacks_packages(dockerfile: str, lacking: bool) -> None:
    ignore = _DockerIgnore("tests\n**/__pycache__\n.venv\n.git")
    image, installed_in = _image(dockerfile, _context(ignore))
    modules = _modules(_packages())
    assert any(str(PurePosixPath(installed_in, m)) not in image for m in modules) is lacking


@pytest.mark.parametrize(
    ("rules", "path", "ignored"),
    [
        ("tests", "tests/unit/x.py", True),
        ("*.egg-info", "evledger.egg-info/PKG-INFO", True),
        ("*.egg-info", "api/x.egg-info", False),  # anchored at the root
        ("**/__pycache__", "api/__pycache__/app.pyc", True),
        ("**/__pycache__", "__pycache__/x.pyc", True),
        ("tests\n!tests/keep.py", "tests/keep.py", False),
        ("api", "apiary/x.py", False),
    ],
)
def test_dockerignore_rules(rules: str, path: str, ignored: bool) -> None:
    assert _DockerIgnore(rules).ignored(path) is ignored
