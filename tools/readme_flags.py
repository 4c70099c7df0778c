"""Regenerate the README's flag tables from the parsers in src/utils/config.py.

    python tools/readme_flags.py          # rewrite README.md in place
    python tools/readme_flags.py --check  # exit 1 if README.md is stale

A flag group that several entry points take (device, model, data formats, ...) is documented once,
in the `<!-- flags:shared -->` block, with the entry points that take it; each entry point's
`<!-- flags:ENTRY -->` block names those shared groups and lists its own flags.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from src.config import ENTRY_GROUPS, build_parser  # noqa: E402 (after the path set-up

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
BLOCK = re.compile(r"<!-- flags:(\w+) -->(?:.*?<!-- /flags:\1 -->)?", re.S)


def entry_groups(entry):
    """[(title, group)] of one entry point's flag groups, in --help order."""
    return [(group.title, group) for group in build_parser(entry)._action_groups  # no public list
            if group.title not in ("options", "optional arguments") and group._group_actions]


def shared_groups():
    """{title: [entries]} of the groups that more than one entry point takes."""
    takers = {}
    for entry in ENTRY_GROUPS:
        for title, _ in entry_groups(entry):
            takers.setdefault(title, []).append(entry)
    return {title: entries for title, entries in takers.items() if len(entries) > 1}


def group_markdown(title, group, takers=()):
    taken = f" (taken by {', '.join(f'`{entry}.py`' for entry in takers)})" if takers else ""
    lines = [f"**{title}**{taken}", ""]
    if group.description:
        lines += [group.description, ""]
    lines += ["| flag | default | meaning |", "| --- | --- | --- |"]
    for action in group._group_actions:
        default = "required" if action.required else f"`{action.default}`"
        meaning = re.sub(r"\s*\(default: %\(default\)s\)", "", action.help or "").replace("|", "\\|")
        if action.choices:
            meaning += " (one of: " + ", ".join(map(str, action.choices)) + ")"
        aliases = action.option_strings[1:]
        if aliases:
            meaning += " (also: " + ", ".join(f"`{alias}`" for alias in aliases) + ")"
        lines.append(f"| `{action.option_strings[0]}` | {default} | {meaning} |")
    return "\n".join(lines)


def shared_markdown():
    parts = ["Every entry point also takes `--config_path FILE.yaml` (see [Configuration files]"
             "(#configuration-files)).", ""]
    groups = {title: group for entry in ENTRY_GROUPS for title, group in entry_groups(entry)}
    for title, entries in shared_groups().items():
        parts += [group_markdown(title, groups[title], entries), ""]
    return "\n".join(parts).rstrip()


def entry_markdown(entry):
    shared = shared_groups()
    names = [title for title, _ in entry_groups(entry) if title in shared]
    parts = [f"`python {entry}.py` flags"
             + (f": the shared groups {', '.join(f'*{name}*' for name in names)} (see [Shared flags]"
                "(#shared-flags)), and" if names else "") + ":", ""]
    for title, group in entry_groups(entry):
        if title not in shared:
            parts += [group_markdown(title, group), ""]
    return "\n".join(parts).rstrip()


def readme_with_flag_tables(readme):
    """`readme` with every `<!-- flags:NAME -->` ... `<!-- /flags:NAME -->` block regenerated."""
    def table(match):
        name = match.group(1)
        body = shared_markdown() if name == "shared" else entry_markdown(name)
        return f"<!-- flags:{name} -->\n{body}\n<!-- /flags:{name} -->"
    return BLOCK.sub(table, readme)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's tables are stale")
    args = parser.parse_args(argv)
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    fresh = readme_with_flag_tables(text)
    if args.check:
        print("README flag tables are " + ("up to date" if fresh == text else "stale: run tools/readme_flags.py"))
        return 0 if fresh == text else 1
    with open(README, "w", encoding="utf-8") as handle:
        handle.write(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
