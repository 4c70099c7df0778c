"""Write docs/flags.md, the flag tables of every entry point, from the entry points' parsers.

    python3 tools/readme_flags.py          # rewrite docs/flags.md
    python3 tools/readme_flags.py --check  # exit 1 if docs/flags.md is stale (tests/test_config.py checks this)

The whole page is generated: change a flag's help where the flag is declared, then rerun this.
A flag group that several entry points take (device, model, data formats, ...) is documented once,
in the `<!-- flags:shared -->` block under "Shared flags", with the entry points that take it; each
entry point's `<!-- flags:ENTRY -->` block, under its own heading, names those shared groups and
lists its own flags. Links to other pages are relative to docs/.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from src.config import ENTRY_GROUPS, build_parser  # noqa: E402 (after the path set-up)
from src.config.derive import DERIVED_FLAGS  # noqa: E402


FLAGS_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "flags.md")


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


def default_cell(action):
    """The default column: the value, "required", "derived" (computed from other flags by
    src/config/derive.py; the meaning says how), "see meaning" (another rule the meaning states)
    or "none"."""
    if action.required:
        return "required"
    if action.dest in DERIVED_FLAGS:
        return "derived"
    if action.default is None:
        return "see meaning" if "default" in (action.help or "") else "none"
    return f"`{action.default}`"


def group_markdown(title, group, takers=(), seen=None, here=None):
    """One group's table. `seen` ({(flag, meaning): (section title, anchor)}) collects the rows
    already written on the page: a flag that means the same as a row above points to it instead
    of repeating its explanation; `here` is this section's (title, anchor)."""
    taken = f" (taken by {', '.join(f'`{entry}.py`' for entry in takers)})" if takers else ""
    lines = [f"**{title}**{taken}", ""]
    if group.description:
        lines += [group.description, ""]
    lines += ["| flag | default | meaning |", "| --- | --- | --- |"]
    for action in group._group_actions:
        default = default_cell(action)
        meaning = re.sub(r"\s*\(default: %\(default\)s\)", "", action.help or "").replace("|", "\\|")
        if action.choices:
            meaning += " (one of: " + ", ".join(map(str, action.choices)) + ")"
        aliases = action.option_strings[1:]
        if aliases:
            meaning += " (also: " + ", ".join(f"`{alias}`" for alias in aliases) + ")"
        key = (action.option_strings[0], meaning)
        if seen is not None and key in seen:
            meaning = "the same as under [{}](#{})".format(*seen[key])
        elif seen is not None and here:
            seen[key] = here
        lines.append(f"| `{action.option_strings[0]}` | {default} | {meaning} |")
    return "\n".join(lines)


def shared_markdown(seen=None):
    parts = ["Every entry point also takes `--config_path FILE.yaml` (see [Configuration files]"
             "(training.md#configuration-files)).", ""]
    groups = {title: group for entry in ENTRY_GROUPS for title, group in entry_groups(entry)}
    for title, entries in shared_groups().items():
        parts += [group_markdown(title, groups[title], entries, seen, ("Shared flags", "shared-flags")), ""]
    return "\n".join(parts).rstrip()


def entry_markdown(entry, seen=None):
    shared = shared_groups()
    names = [title for title, _ in entry_groups(entry) if title in shared]
    parts = [f"`python3 {entry}.py` flags"
             + (f": the shared groups {', '.join(f'*{name}*' for name in names)} (see [Shared flags]"
                "(#shared-flags)), and" if names else "") + ":", ""]
    for title, group in entry_groups(entry):
        if title not in shared:
            parts += [group_markdown(title, group, (), seen, (f"{entry}.py", f"{entry}py")), ""]
    return "\n".join(parts).rstrip()


def block(name, body):
    return f"<!-- flags:{name} -->\n{body}\n<!-- /flags:{name} -->"


def flags_page():
    """The text of docs/flags.md: an index, the shared groups, then one section per entry point."""
    entries, seen = list(ENTRY_GROUPS), {}
    parts = ["# Flags of every entry point", "",
             "<!-- Generated by tools/readme_flags.py from the parsers: do not edit by hand. -->", "",
             "Generated from the entry points' parsers by `python3 tools/readme_flags.py`; `--check` "
             "reports a stale page, and a test runs it. `python3 ENTRY.py --help` prints the same flags. "
             "Flags on the command line override a `--config_path` file "
             "([Configuration files](training.md#configuration-files)).", "",
             "| entry point | its flags |", "| --- | --- |",
             "| every entry point | [Shared flags](#shared-flags) |"]
    parts += [f"| `{entry}.py` | [{entry}.py](#{entry}py) |" for entry in entries]
    parts += ["", "## Shared flags", "", block("shared", shared_markdown(seen)), ""]
    for entry in entries:
        parts += [f"## {entry}.py", "", block(entry, entry_markdown(entry, seen)), ""]
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/flags.md is stale")
    args = parser.parse_args(argv)
    fresh = flags_page()
    if args.check:
        try:
            with open(FLAGS_PAGE, encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        print("docs/flags.md is " + ("up to date" if fresh == current else "stale: run tools/readme_flags.py"))
        return 0 if fresh == current else 1
    os.makedirs(os.path.dirname(FLAGS_PAGE), exist_ok=True)
    with open(FLAGS_PAGE, "w", encoding="utf-8") as handle:
        handle.write(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
