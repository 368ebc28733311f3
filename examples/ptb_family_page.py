"""Render docs/results/family.md's tables and figure from the released cards and the probe
results: the family table (`vaehub.hub.family_table`), the rate–distortion figure
(`vaehub.hub.plot_family`) and the recipe probes (examples/results/family/probes.json); and
the README's block of what the reconstruction flagship writes (its card's generation report,
decoded by the release with a recorded seed).

    python examples/ptb_family_page.py [MODEL_CARDS]

A member not yet released is left out; the queue and where each run stands are on the page
and in examples/ptb_family.sh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vaehub.hub.family import family_table, plot_family
from vaehub.utils.formatting import fixed

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results" / "family.md"
# Written under examples/results/ (what runs write); the docs link to it from figures/.
FIGURE = ROOT / "examples" / "results" / "family" / "rate_distortion.png"
PROBES = ROOT / "examples" / "results" / "family" / "probes.json"
# The family's members, by the card folder their release writes (examples/ptb_family.sh's
# stages, and the two flagships of before, measured beside the same language model).
MEMBERS = (
    "ptb-vae", "ptb-vae-high-rate", "ptb-vae-lm-grade", "ptb-vae-cap-15", "ptb-vae-cap-30",
    "ptb-vae-cap-60", "ptb-vae-recon",
)  # fmt: skip


def members(model_cards: Path) -> list[Path]:
    """The released members' folders."""
    return [model_cards / name for name in MEMBERS if (model_cards / name / "README.md").is_file()]


def probes_table(path: Path = PROBES) -> str:
    """The recipe probes as a Markdown table, from their results file."""
    record = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "| probe | flags | validation reconstruction | KL | MI | active units | wall (s) |\n",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
    ]
    groups = [record["probes"], record.get("from_autoencoder", {}).get("probes", {})]
    for group in groups:
        for name, probe in group.items():
            flags = probe["command"].split("--preset ptb ")[1].split(" --per_device")[0]
            flags = flags.replace("--model_name_or_path RUNS/ae/checkpoint-6575 ", "(from ae) ")
            v = probe["validation"]
            wall = "" if probe["wall_seconds"] is None else probe["wall_seconds"]
            lines.append(
                f"| `{name}` | `{flags}` | {fixed(v['reconstruction'], 1)} | "
                f"{fixed(v['kl'], 1)} | {fixed(v['mi'], 2)} | {v['active_units']:.0f} | "
                f"{wall} |\n"
            )
    lm = record["ptb-lstm-lm validation[:500]"]["metrics"]
    lines.append(
        f"| `ptb-lstm-lm` (25 epochs, no z) | | {fixed(lm['nll'], 1)} | – | – | – | |\n"
    )
    return "".join(lines)


README = ROOT / "README.md"
RECON = "ptb-vae-recon"


def shown_block(card: Path) -> str:
    """What a card's generation report shows, as the README's text block: reconstructions
    (input, then the decoding of its posterior mean) and an interpolation's path."""
    report = json.loads((card / "generation.json").read_text(encoding="utf-8"))
    shown, seed = report["shown"], report["settings"]["seed"]
    path = shown["interpolation"]
    lines = [f"```text\n# {card.name}, decoded by its release (seed {seed})\n"]
    for pair in shown["reconstructions"]:
        lines.append(f"  {pair['input'].strip()}\n→ {pair['output']}\n")
    first, last = (sentence.strip() for sentence in path["inputs"])
    lines.append(f"# interpolation from \"{first}\" to \"{last}\":\n")
    lines += [f"{sentence}\n" for sentence in path["path"]]
    lines.append("```\n")
    return "".join(lines)


def replace_block(page: str, marker: str, body: str) -> str:
    head, rest = page.split(f"<!-- {marker} -->\n", 1)
    _, tail = rest.split(f"<!-- /{marker} -->", 1)
    return f"{head}<!-- {marker} -->\n{body}<!-- /{marker} -->{tail}"


def main(model_cards: Path) -> None:
    folders = members(model_cards)
    page = PAGE.read_text(encoding="utf-8")
    page = replace_block(page, "family", family_table(folders))
    page = replace_block(page, "probes", probes_table())
    PAGE.write_text(page, encoding="utf-8")
    plot_family(folders, FIGURE)
    print(f"wrote {PAGE} and {FIGURE} from {len(folders)} cards")
    if (model_cards / RECON / "generation.json").is_file():
        readme = README.read_text(encoding="utf-8")
        README.write_text(replace_block(readme, "recon", shown_block(model_cards / RECON)))
        print(f"wrote {RECON}'s reconstructions and path into {README}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "model_cards")
