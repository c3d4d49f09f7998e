"""YAML text to Python data, with libyaml's parser when PyYAML has it (as python-frontmatter
does for the principles): ten times faster than the pure-Python one, and the same data
(every file of `knowledge/` and `prompts/` loads identically, tests/test_startup.py). A
one-shot `fournil coach` reads some 30 files before its card: about 0.23 s with the pure
parser, 0.02 s with libyaml.
"""

from __future__ import annotations

from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

# The parser in use: libyaml's when PyYAML was built with it.
SAFE_LOADER: type[Any] = _SafeLoader


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, faster; raises the same `yaml.YAMLError` on a broken file."""
    return yaml.load(text, Loader=SAFE_LOADER)
