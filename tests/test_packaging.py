"""The files the package reads at run time are declared as package data (a non-editable install keeps them)."""

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_weights_and_schemas_are_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["omniemo"]
    package = ROOT / "src" / "omniemo"
    needed = [p for p in package.rglob("*") if p.is_file() and p.suffix in {".npz", ".json", ".md"}]
    assert any(p.name == "fusion_weights.json" for p in needed) and any(p.name == "speech_emotion.npz" for p in needed)
    missing = [str(p.relative_to(package)) for p in needed
               if not any(fnmatch.fnmatch(str(p.relative_to(package)), g) for g in globs)]
    assert not missing, f"not declared as package data: {missing}"
