"""mirrorpo: a JAX laboratory for preference-optimization objectives.

Packages, with data flowing one way: envs → agents → data → losses → train → tasks → benchmark →
meta → llm → report → cli. Start with :mod:`mirrorpo.losses`; the design is in ``docs/design.md``.

Importing mirrorpo sets XLA's CPU code generation to a portable form (before JAX starts its
backend), so that results depend less on which x86-64 CPU runs them: it caps LLVM's code at AVX2
(``--xla_cpu_max_isa``) and turns off XLA's YNNPACK fusions, whose kernels are chosen at run time
for the host's instruction set and ignore that cap (measured: with the cap, turning them off changes
the quick TLA start-policy return from 282.57 to 270.75 on an AVX-512 host). A flag that
``XLA_FLAGS`` already sets is left as given; ``MIRRORPO_NATIVE_ISA=1`` leaves XLA's choices alone
(README: "What reproduces where").
"""

import os as _os
import platform as _platform

PORTABLE_ISA = "AVX2"
# jaxlib releases on which the YNNPACK flag was verified to exist (an unknown flag aborts XLA)
_YNN_FLAG_JAXLIB = ("0.10.",)


def portable_xla_flags() -> dict[str, str]:
    """The XLA flags importing mirrorpo adds on x86-64 (name → value), for this jaxlib."""
    from importlib.metadata import PackageNotFoundError, version

    flags = {"xla_cpu_max_isa": PORTABLE_ISA}
    try:
        if version("jaxlib").startswith(_YNN_FLAG_JAXLIB):
            flags["xla_cpu_experimental_ynn_fusion_type"] = ""
    except PackageNotFoundError:
        pass
    return flags


def _set_portable_xla_flags() -> None:
    if _platform.machine().lower() not in ("x86_64", "amd64") or _os.environ.get("MIRRORPO_NATIVE_ISA") == "1":
        return
    flags = _os.environ.get("XLA_FLAGS", "")
    added = [f"--{name}={value}" for name, value in portable_xla_flags().items() if f"--{name}" not in flags]
    _os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()


_set_portable_xla_flags()

__version__ = "0.1.0"
