"""Real ELF files for tests, compiled with the machine's C compiler."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path


def compile_library(
    path: Path,
    source: str,
    *,
    soname: str | None = None,
    links: tuple[str, ...] = (),
    link_dirs: tuple[Path, ...] = (),
    rpath: str | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_name(path.name + ".c")
    src.write_text(source)
    cmd = ["cc", "-shared", "-fPIC", "-g", "-O1", "-o", str(path), str(src)]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    for folder in link_dirs:
        cmd.append(f"-L{folder}")
    cmd += [f"-l{name}" for name in links]
    if rpath:
        cmd.append(f"-Wl,-rpath,{rpath}")
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()
    return path


def package_tree(root: Path) -> dict[str, Path]:
    """pkg/_ext.so needs pkg.libs/libdep.so; pkg.libs/liborphan.so is needed by nothing."""
    libs = root / "pkg.libs"
    dep = compile_library(libs / "libdep.so", "int dep(void) { return 41; }\n", soname="libdep.so")
    orphan = compile_library(libs / "liborphan.so", "int orphan(void) { return 1; }\n", soname="liborphan.so")
    ext = compile_library(
        root / "pkg" / "_ext.so",
        "#include <stdio.h>\nint dep(void);\nint ext(const char *s) { return dep() + puts(s); }\n",
        links=("dep",),
        link_dirs=(libs,),
        rpath="$ORIGIN/../pkg.libs",
    )
    return {"dep": dep, "orphan": orphan, "ext": ext}


def misalign_a_load_segment(path: Path) -> None:
    """Shift the file offset of the second PT_LOAD segment so that
    (vaddr - offset) is no longer a multiple of the page size — the damage
    ``strip`` does to numpy 2's OpenBLAS."""
    data = bytearray(path.read_bytes())
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads = 0
    for index in range(phnum):
        base = phoff + index * phentsize
        p_type = struct.unpack_from("<I", data, base)[0]
        if p_type != 1:
            continue
        loads += 1
        if loads == 2:
            offset = struct.unpack_from("<Q", data, base + 8)[0]
            struct.pack_into("<Q", data, base + 8, offset + 0x10)
            path.write_bytes(bytes(data))
            return
    raise AssertionError("no second PT_LOAD segment")
