"""Write constraints.txt: the installed version of every package requirements.txt needs, with
everything those need in turn (extras included), as `name==version` pins.

    python3 tools/pin_constraints.py          # after a green CI run on a fresh install
    python3 tools/pin_constraints.py --check  # exit 1 if constraints.txt differs from what is installed

requirements.txt keeps the ranges users need; `pip install -r requirements.txt -c constraints.txt`
(.ci/run, scripts/run_quickstart.sh) installs exactly the versions CI last passed with.
"""
import argparse
import os
import platform
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)
from src.utils.files import atomic_write_text  # noqa: E402 (after the path set-up)

REQUIREMENTS = os.path.join(REPO, "requirements.txt")
CONSTRAINTS = os.path.join(REPO, "constraints.txt")


def read_requirements(path):
    with open(path, encoding="utf-8") as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    return [Requirement(line) for line in lines if line]


def applies(requirement, extras):
    """Whether a dependency applies here, for a parent installed with `extras`."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def installed_closure(requirements):
    """{canonical name: installed version} of `requirements` and their dependencies; a
    requirement that is not installed is an error naming it."""
    pins, todo = {}, [(requirement, set(requirement.extras)) for requirement in requirements]
    seen = set()
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"error: {requirement.name} is not installed: pip install -r requirements.txt first")
        pins[name] = distribution.version
        for line in distribution.requires or ():
            dependency = Requirement(line)
            if applies(dependency, extras):
                todo.append((dependency, set(dependency.extras)))
    return pins


def constraints_text(pins):
    header = (f"# Pinned versions of requirements.txt and everything it pulls in, as CI last passed with them\n"
              f"# (Python {platform.python_version()}, {platform.system()} {platform.machine()}).\n"
              "# pip install -r requirements.txt -c constraints.txt; refresh: python3 tools/pin_constraints.py\n")
    return header + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if constraints.txt differs from what is installed")
    args = parser.parse_args(argv)
    text = constraints_text(installed_closure(read_requirements(REQUIREMENTS)))
    if args.check:
        if not os.path.isfile(CONSTRAINTS):
            sys.exit(f"error: {os.path.relpath(CONSTRAINTS)} is missing: run python3 tools/pin_constraints.py")
        with open(CONSTRAINTS, encoding="utf-8") as handle:
            same = handle.read().splitlines()[3:] == text.splitlines()[3:]
        print("constraints.txt " + ("matches the installed versions" if same else "differs from the installed versions"))
        return 0 if same else 1
    atomic_write_text(CONSTRAINTS, text)
    print(f"wrote {os.path.relpath(CONSTRAINTS)}: {len(text.splitlines()) - 3} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
