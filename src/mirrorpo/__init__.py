"""mirrorpo: a JAX laboratory for preference-optimization objectives.

Packages, with data flowing one way: envs → agents → data → losses → train → evaluate → meta →
llm → report → cli. Start with :mod:`mirrorpo.losses`.
"""

__version__ = "0.1.0"
