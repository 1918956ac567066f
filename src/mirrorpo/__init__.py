"""mirrorpo: a JAX laboratory for preference-optimization objectives.

Packages, with data flowing one way: envs → agents → data → losses → train → tasks → benchmark →
meta → llm → report → cli. Start with :mod:`mirrorpo.losses`; the design is in ``docs/design.md``.

Importing mirrorpo caps XLA's CPU code generation at AVX2 on x86-64 (before JAX starts its backend),
so that results reproduce across machines whose CPUs differ in instruction set: XLA vectorises for
the host (AVX-512 or AVX2), the rounding of reductions follows, and the contact dynamics of brax
amplify it into different returns. ``XLA_FLAGS`` that set ``--xla_cpu_max_isa`` themselves, or
``MIRRORPO_NATIVE_ISA=1``, leave XLA's choice alone (README: "What reproduces where").
"""

import os as _os
import platform as _platform

PORTABLE_ISA = "AVX2"


def _cap_cpu_isa() -> None:
    flags = _os.environ.get("XLA_FLAGS", "")
    if (_platform.machine().lower() in ("x86_64", "amd64") and "xla_cpu_max_isa" not in flags
            and _os.environ.get("MIRRORPO_NATIVE_ISA") != "1"):
        _os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_max_isa={PORTABLE_ISA}".strip()


_cap_cpu_isa()

__version__ = "0.1.0"
