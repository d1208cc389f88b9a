"""Runs inside the smoke run's clean interpreter (``python -I -S``): only the
unzipped task folder and the standard library are importable. Imports the
handler module like Lambda does, classifies the images it is given, imports
the runtime's modules and every plugin of the packages named (Pillow's image
plugins), and prints one JSON document. Standard library only."""

import importlib
import json
import os
import pkgutil
import sys
import sysconfig
import time


def main() -> None:
    task, request_path = sys.argv[1], sys.argv[2]
    with open(request_path) as handle:
        request = json.load(handle)
    sys.path.insert(0, task)
    roots = [task]
    staged_s = None
    if "staged" in request:
        began = time.perf_counter()
        staged = importlib.import_module("lambdapack_handler.staged")
        roots.append(str(staged.stage_file(request["staged"]["archive"], request["staged"]["sha256"])))
        staged_s = time.perf_counter() - began
    start = time.perf_counter()
    index = importlib.import_module(request.get("handler_module", "index"))
    imported = time.perf_counter() - start
    results = []
    for number, image in enumerate(request["images"]):
        with open(image, "rb") as handle:
            data = handle.read()
        began = time.perf_counter()
        result = index.classify(data, k=request["k"])
        elapsed = time.perf_counter() - began
        results.append({"image": image, "top_k": result["top_k"], "seconds": elapsed, "first": number == 0})
    failures = {}
    for name in request["imports"]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # report every failure, not just the first
            failures[name] = f"{type(exc).__name__}: {exc}"
    for package, suffix in request.get("plugins", {}).items():
        try:
            path = importlib.import_module(package).__path__
        except ImportError:
            continue  # not in this zip: nothing of it to check
        for plugin in pkgutil.iter_modules(path, package + "."):
            if plugin.name.endswith(suffix):
                try:
                    importlib.import_module(plugin.name)
                except Exception as exc:
                    failures[plugin.name] = f"{type(exc).__name__}: {exc}"
    stdlib = sysconfig.get_paths()["stdlib"]
    outside = sorted(
        name
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
        and name not in ("__main__", "__mp_main__")  # multiprocessing aliases the script
        and not module.__file__.startswith(tuple(roots))
        and not module.__file__.startswith(stdlib)
    )
    from_task = [
        m for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").startswith(tuple(roots))
    ]
    with_pyc = [
        m for m in from_task if (getattr(m, "__cached__", None) or "") and os.path.exists(m.__cached__)
    ]
    print(
        json.dumps(
            {
                "import_s": imported,
                "staged_s": staged_s,
                "results": results,
                "import_failures": failures,
                "modules_from_task": len(from_task),
                "modules_with_pyc": len(with_pyc),
                "modules_from_elsewhere": outside,
            }
        )
    )


if __name__ == "__main__":
    main()
