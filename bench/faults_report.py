"""bench/FAULTS.md: one section per fault campaign, each rewritten by its own script
(kill_campaign.py, fuzz_readers.py, long_serve.py) and left alone by the others."""
import os
import re

from src.utils.files import atomic_write_text

REPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "FAULTS.md")
HEADER = ["# Faults", "", "Campaigns of faults injected into the project, and what survived them. Each section is "
          "written by the script named in its title; rerun it to renew the section.", ""]
ORDER = ("kill", "fuzz", "serve")


def write_section(name, lines):
    """Replace (or add) the section `name` of bench/FAULTS.md with `lines`."""
    sections = {}
    if os.path.exists(REPORT):
        with open(REPORT, encoding="utf-8") as handle:
            text = handle.read()
        for match in re.finditer(r"<!-- section: (\w+) -->\n(.*?)<!-- end: \1 -->\n", text, re.S):
            sections[match.group(1)] = match.group(2)
    sections[name] = "\n".join(lines).rstrip("\n") + "\n"
    names = [n for n in ORDER if n in sections] + sorted(n for n in sections if n not in ORDER)
    body = "".join(f"<!-- section: {n} -->\n{sections[n]}<!-- end: {n} -->\n" for n in names)
    atomic_write_text(REPORT, "\n".join(HEADER) + "\n" + body)
