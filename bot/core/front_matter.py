"""Markdown files with YAML front matter (principles, onboarding steps), read one way:
every problem becomes a KnowledgeError naming the file and what is wrong in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import frontmatter
import yaml

from bot.core.errors import KnowledgeError


def read_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """The front matter (never empty) and the markdown body."""
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "front matter", str(exc).replace("\n", " ")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(path, "file", str(exc)) from None
    metadata: dict[str, Any] = dict(post.metadata)
    if not metadata:
        raise KnowledgeError(path, "front matter", "missing (the file must start with ---)")
    return metadata, post.content
