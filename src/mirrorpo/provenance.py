"""Where a result was computed: the facts that decide whether two machines give the same digits
(README: "What reproduces where"). Stored in every benchmark cell."""

from __future__ import annotations

import functools
import os
import platform

_ISA_LEVELS = ("avx512f", "avx2", "avx", "sse4_2")


def machine() -> dict[str, str | int]:
    """{cpu, cpu_id, isa, cores, xla_flags, jax}: the CPU's model name, its vendor, family and model
    numbers (a virtual machine may name every model alike, e.g. "AMD EPYC", while Zen 4 is family 25
    and Zen 5 family 26) and its widest x86 vector ISA (from /proc/cpuinfo where there is one), the
    XLA flags in force and the JAX version. A fresh dict per call (each cell owns its record);
    /proc/cpuinfo is read once per process."""
    return dict(_machine())


@functools.cache
def _machine() -> dict[str, str | int]:
    import jax

    cpu, flags, ident = platform.processor() or platform.machine(), set(), {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key == "model name":
                    cpu = value
                elif key in ("vendor_id", "cpu family", "model"):
                    ident[key] = value
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = next((level for level in _ISA_LEVELS if level in flags), platform.machine())
    cpu_id = (f"{ident.get('vendor_id', '?')} family {ident.get('cpu family', '?')} model {ident.get('model', '?')}"
              if ident else platform.machine())
    return {"cpu": cpu, "cpu_id": cpu_id, "isa": isa, "cores": os.cpu_count() or 0,
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "jax": jax.__version__}
