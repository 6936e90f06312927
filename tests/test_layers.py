"""The folders show the layers (docs/architecture.md): every import in landscape/ goes to its
own room or a room below, never up, and no modules import each other in a circle. Read from
the source (every `import` statement, those inside functions included), so a lazy import that
climbs is caught too. (At run time every module loads `landscape/__init__`, which offers
`landscape.record`, so an interpreter cannot show the layers; the source does.)"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Rooms from the bottom up; a room may import rooms of lower layers only.
LAYERS = [
    ("errors", "version"),
    ("models", "data", "optim", "store"),
    ("config",),
    ("training", "report"),
    ("probes", "plot"),
    ("page",),  # landscape report's HTML: report's sections and plot's figures
    ("instrument",),  # landscape.Recorder: a run of any loop; what record's runs share with it
    ("lightning", "huggingface"),  # the Recorder's adapters to frameworks (optional extras)
    ("sweep",),
    ("kept",),
    ("surfaces",),
    ("cli",),
    ("__main__", ""),  # "": the package's own __init__ (landscape.record, ...)
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: str) -> dict[str, set[str]]:
    """Module -> the modules (of landscape or analyses) its import statements name."""
    graph = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if _type_checking(block)
                       for statement in block.body for n in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # `if TYPE_CHECKING:` imports are for annotations, never run
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        graph[module_name(path)] = names
    return graph


def _type_checking(node) -> bool:
    return isinstance(node, ast.If) and (
        isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        or isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")


def resolve(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Keep the names that are modules of the graph (`from pkg import name` counts as an
    import of pkg.name when that is a module, else of pkg)."""
    return {m: {n for n in names if n in graph} for m, names in graph.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_is_in_a_room_of_the_diagram():
    assert sorted({room(m) for m in imports("landscape")} - set(RANK)) == []


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items()
                  for target in targets
                  if room(target) != room(module) and RANK[room(target)] >= RANK[room(module)])


def circles(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = defaultdict(int)  # 0 unseen, 1 on the path, 2 done
    found = []

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph[module]):
            if state[target] == 1:
                found.append(" -> ".join(path[path.index(target):] + [target]))
            elif state[target] == 0:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    return found


def test_imports_go_down_only():
    assert upward(resolve(imports("landscape"))) == []


def test_no_import_circles():
    assert circles(resolve(imports("landscape"))) == []


def test_analyses_import_nothing_of_landscape_torch_or_h5py():
    named = {n.split(".")[0] for names in imports("analyses").values() for n in names}
    assert not named & {"landscape", "torch", "h5py"}


def test_the_checks_catch_an_upward_import_and_a_circle():
    """The checks above can fail: a training module that imported the sweep is named, and so
    is the circle it closes (the sweep imports the loop)."""
    graph = resolve(imports("landscape"))
    graph["landscape.training.loop"] = graph["landscape.training.loop"] | {"landscape.sweep.run"}
    assert upward(graph) == ["landscape.training.loop -> landscape.sweep.run"]
    assert any("landscape.training.loop -> landscape.sweep.run" in c for c in circles(graph))
