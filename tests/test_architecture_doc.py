"""ARCHITECTURE.md cannot drift silently: every path, module name and setting it quotes in
backticks must still exist.

- A path: a backticked span of path characters ending in `.py` or `/`, read from the
  repository root (`arena/fastpath.py`, `arena/board/`). A bare file name such as
  `views.py` counts too and fails: the document names files by their full path.
- A dotted name under an app or `config` (`arena.judgments.record_judgment`): the longest
  prefix that is a module of ours, then each remaining part defined in it (a function,
  class, assignment or import at its top level, then inside that class).
- A setting (`DUET_...`, `DATABASE_URL`, `CELERY_BROKER_URL`): read by config/settings.py.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "ARCHITECTURE.md"
TOPS = ("arena", "annotation", "training", "routing", "config")

PATH = re.compile(r"[\w.\-][\w.\-/]*(\.py|/)")  # not "/api/ping/": a URL
DOTTED = re.compile(rf"({'|'.join(TOPS)})(\.\w+)+")
SETTING = re.compile(r"DUET_\w+|DATABASE_URL|CELERY_BROKER_URL")


def quoted(text: str) -> list[str]:
    """The backticked spans outside fenced blocks."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", prose)


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined(body: list[ast.stmt]) -> dict[str, ast.AST]:
    names = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            names.update((target.id, node) for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(((alias.asname or alias.name).split(".")[0], node) for alias in node.names)
        elif isinstance(node, ast.If | ast.Try):  # definitions under a guard still define
            names.update(_defined(node.body))
    return names


def _dotted_exists(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        path = _module_file(".".join(parts[:cut]))
        if path is None:
            continue
        scope = ast.parse(path.read_text(), str(path)).body
        for attribute in parts[cut:]:
            node = _defined(scope).get(attribute)
            if node is None:
                return False
            scope = node.body if isinstance(node, ast.ClassDef) else []
        return True
    return False


def missing(text: str) -> list[str]:
    """What `text` quotes that the repository does not have, each with why."""
    settings_source = (ROOT / "config" / "settings.py").read_text()
    problems = []
    for span in quoted(text):
        if PATH.fullmatch(span):
            if not (ROOT / span).exists():
                problems.append(f"{span}: no such path")
        elif DOTTED.fullmatch(span):
            if not _dotted_exists(span):
                problems.append(f"{span}: no such module or name")
        elif SETTING.fullmatch(span):
            if f'"{span}"' not in settings_source:
                problems.append(f"{span}: config/settings.py does not read it")
    return problems


def test_every_quoted_path_name_and_setting_exists():
    assert missing(DOC.read_text()) == []


def test_the_document_quotes_enough_to_check():
    # given: the document as it stands
    spans = quoted(DOC.read_text())
    # then: the checks above bite on a real share of it (a format change that hid every
    # span from them would pass vacuously)
    assert sum(bool(PATH.fullmatch(s)) for s in spans) >= 80
    assert sum(bool(DOTTED.fullmatch(s)) for s in spans) >= 30
    assert sum(bool(SETTING.fullmatch(s)) for s in spans) >= 5


@pytest.mark.parametrize(
    "span, why",
    [
        ("arena/voting/fastpth.py", "no such path"),  # a misspelt file
        ("arena/bord/", "no such path"),  # a misspelt folder
        ("fastpath.py", "no such path"),  # a bare name, not a path from the root
        ("arena.judgments.record_judgement", "no such module or name"),  # a misspelt function
        ("arena.jobs.tasks.JobTask.run_jobs", "no such module or name"),  # a misspelt method
        ("arena.nowhere", "no such module or name"),
        ("DUET_LEADERBOARD_DEBOUNCE_SECONDS", "config/settings.py does not read it"),
    ],
)
def test_a_misspelling_is_caught(span, why):
    assert missing(f"see `{span}` here") == [f"{span}: {why}"]


@pytest.mark.parametrize(
    "span",
    ["arena/fastpath.py", "arena/board/", "arena.jobs.tasks.JobTask.run_job", "config.celery.LANES",
     "arena.models.Webhook", "DUET_LEADERBOARD_DEBOUNCE"],
)
def test_what_exists_passes(span):
    assert missing(f"see `{span}` here") == []


def test_the_readme_points_to_the_document():
    assert "ARCHITECTURE.md" in (ROOT / "README.md").read_text()
