"""Real principle files written into a temporary knowledge base, for the alias and sourcing
tests: each helper writes a file exactly as an editor would, and the code under test reads
it from disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

SEED = "Seed essay: Les marchés sont des conversations (Fournil seeds)"
HEADINGS = {
    "en": ("Idea", "Why it works", "Weak example", "Strong example"),
    "fr": ("L'idée", "Pourquoi ça marche", "Exemple faible", "Exemple fort"),
}
STRONG = {
    "en": "Hi Dana, your post on the new Leeds depot caught my eye. How are you splitting the "
    "night shifts between the two sites?",
    "fr": "Bonjour Claire, votre article sur le nouvel entrepôt de Lille m'a interpellé. Comment "
    "répartissez-vous les équipes de nuit entre les deux sites ?",
}


def write_principle(
    directory: Path,
    pid: str,
    lang: str = "en",
    *,
    aliases: Sequence[str] = (),
    related: Sequence[str] = (),
    sources: Sequence[str] = (SEED,),
    summary: str = "A sample principle, stated in one plain sentence.",
    idea: str = "Start from the buyer's world, as the essay argues [1].",
    why: str = "Buyers answer what concerns them.",
    strong: str | None = None,
) -> Path:
    """`<directory>/<pid>.<lang>.md`, valid unless the arguments make it otherwise."""
    meta: dict[str, object] = {
        "id": pid,
        "title": f"Sample {pid}",
        "lang": lang,
        "summary": summary,
        "tags": ["sample"],
        "sources": list(sources),
        "related": list(related),
    }
    if aliases:
        meta["aliases"] = list(aliases)
    idea_h, why_h, weak_h, strong_h = HEADINGS[lang]
    body = (
        f"## {idea_h}\n{idea}\n\n## {why_h}\n{why}\n\n"
        f"## {weak_h}\n> We are the leading platform. Can we book a demo?\n\n"
        f"## {strong_h}\n> {strong if strong is not None else STRONG[lang]}\n"
    )
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{pid}.{lang}.md"
    path.write_text(f"---\n{front}---\n\n{body}", encoding="utf-8")
    return path


def write_pair(
    directory: Path, pid: str, aliases: Sequence[str] = (), related: Sequence[str] = ()
) -> tuple[Path, Path]:
    """The English and the French file of one principle, with the same aliases and links."""
    return (
        write_principle(directory, pid, "en", aliases=aliases, related=related),
        write_principle(
            directory,
            pid,
            "fr",
            aliases=aliases,
            related=related,
            summary="Un principe d'exemple, dit en une phrase simple.",
            idea="Partez du monde de l'acheteur, comme le dit l'essai [1].",
            why="L'acheteur répond à ce qui le concerne.",
        ),
    )
