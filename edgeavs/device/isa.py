"""Which instructions a compiled AArch64 library contains: the no-SVE/SME check.

The Snapdragon 8 Elite's Oryon cores have NEON, dotprod, i8mm and fp16 but neither SVE nor
SME; one such instruction in the phone library is a SIGILL on the phone. This disassembles
with ``aarch64-linux-gnu-objdump -d`` (Debian's binutils-aarch64-linux-gnu, installed by
``edgeavs device setup-emulator``) and scans the instruction column for SVE/SME registers
(``z0.s``, predicates ``p0/z``, ``za``) and for the SVE/SME-only mnemonics that use none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from edgeavs.errors import EdgeAVSError

OBJDUMP = "aarch64-linux-gnu-objdump"

_SVE = re.compile(
    r"\bz(?:[0-9]|[12][0-9]|3[01])\.[bhsdq]\b"          # SVE vector register with element size
    r"|\bz(?:[0-9]|[12][0-9]|3[01])\[\d+\]"             # indexed SVE register
    r"|\bp(?:[0-9]|1[0-5])(?:/[zm]|\.[bhsd])\b"         # SVE predicate register
    r"|\bza(?:[0-9]+[hv]?)?(?:\.[bhsdq])?\b"            # SME ZA array
    r"|^\s*(?:ptrues?|pfalse|ptest|pnext|pfirst|while(?:lo|ls|lt|le|hi|hs|gt|ge)"
    r"|rdvl|addvl|addpl|cnt[bhwd]|(?:inc|dec|sqinc|sqdec|uqinc|uqdec)[bhwdp]"
    r"|setffr|rdffr|wrffr|smstart|smstop|rdsvl|addsvl|addspl)\b")


def disassemble(path) -> list[tuple[str, str]]:
    """``(address, instruction text)`` for every instruction in ``path``'s code."""
    if shutil.which(OBJDUMP) is None:
        raise EdgeAVSError(f"{OBJDUMP} not found: run 'edgeavs device setup-emulator' "
                           "(installs binutils-aarch64-linux-gnu)")
    path = Path(path)
    if not path.is_file():
        raise EdgeAVSError(f"library {path} not found")
    proc = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise EdgeAVSError(f"{OBJDUMP} cannot read {path.name}: {lines[-1] if lines else proc.returncode}")
    out = []
    for line in proc.stdout.splitlines():
        addr, sep, insn = line.partition(":\t")
        if sep and addr.strip() and all(c in "0123456789abcdef" for c in addr.strip()):
            out.append((addr.strip(), " ".join(insn.split("//", 1)[0].split())))
    return out


def sve_instructions(path) -> list[str]:
    """Every SVE/SME instruction in the library, as ``"address: text"``; empty when none."""
    return [f"{addr}: {insn}" for addr, insn in disassemble(path) if _SVE.search(insn)]


def check_no_sve(path) -> int:
    """Raise a one-line error naming the first SVE/SME instruction; else the number of
    instructions checked."""
    insns = disassemble(path)
    bad = [f"{a}: {i}" for a, i in insns if _SVE.search(i)]
    if bad:
        raise EdgeAVSError(f"{Path(path).name} contains {len(bad)} SVE/SME instruction(s) "
                           f"(first: {bad[0].strip()}); the Snapdragon 8 Elite has no SVE")
    if not insns:
        raise EdgeAVSError(f"{Path(path).name}: {OBJDUMP} found no instructions")
    return len(insns)
