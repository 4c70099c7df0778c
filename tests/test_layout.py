"""The house's layers: imports point one way, and there are no import cycles.

utils <- dataset <- models <- config <- the application modules (src/*.py) <- serve: a module
imports only its own layer or lower ones, at module level or inside functions. Checked by
parsing the sources, so no import runs."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")
LAYERS = ("src.utils", "src.dataset", "src.models", "src.config", "src.app", "src.serve")


def module_name(path):
    relative = os.path.relpath(path, REPO)[:-len(".py")].replace(os.sep, ".")
    return relative[:-len(".__init__")] if relative.endswith(".__init__") else relative


def source_modules():
    found = {}
    for folder, _, files in os.walk(SRC):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                found[module_name(path)] = path
    return found


def imported_modules(path, known):
    """Every src module `path` imports anywhere in its body (a `from src.x import y` of a
    submodule y counts as importing src.x.y)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in known}


def layer(module):
    """The index of a module's layer in LAYERS; src/*.py modules are the application layer."""
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return LAYERS.index("src.app")


def import_graph():
    known = source_modules()
    return {module: imported_modules(path, known) - {module} for module, path in known.items()}


def test_every_import_points_to_its_own_layer_or_below():
    wrong = [f"{module} ({LAYERS[layer(module)]}) imports {target} ({LAYERS[layer(target)]})"
             for module, targets in import_graph().items() for target in sorted(targets)
             if layer(target) > layer(module) and target != "src"]
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


def test_utils_import_nothing_of_models_data_config_or_serving():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("src.utils"):
            assert all(target.startswith("src.utils") for target in targets), (module, targets)


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The parser finds imports inside functions too (the lazy imports that hid loops)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from src.models.registry import models\n")
    assert imported_modules(str(module), {"src.models.registry", "src.utils.lr"}) == {"src.models.registry"}
    assert layer("src.models.registry") > layer("src.utils.lr")
    assert layer("src.trainer") > layer("src.config.flags") > layer("src.models.registry") > layer("src.dataset.io")


def test_constraints_pin_every_requirement_within_its_range():
    """requirements.txt holds the ranges users need; constraints.txt pins a version inside each
    range (the versions CI last passed with), and the installers use both."""
    import sys
    from packaging.utils import canonicalize_name
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from pin_constraints import read_requirements
    pins = {}
    with open(os.path.join(REPO, "constraints.txt"), encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                name, version = line.strip().split("==")
                pins[canonicalize_name(name)] = version
    for requirement in read_requirements(os.path.join(REPO, "requirements.txt")):
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned, f"constraints.txt pins no {requirement.name}: run tools/pin_constraints.py"
        assert requirement.specifier.contains(pinned, prereleases=True), \
            f"{requirement.name}=={pinned} is outside {requirement}"
    for installer in (".ci/run", "scripts/run_quickstart.sh"):
        with open(os.path.join(REPO, installer), encoding="utf-8") as handle:
            assert "-r requirements.txt -c constraints.txt" in handle.read(), installer
