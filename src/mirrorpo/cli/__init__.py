"""The ``mirrorpo`` command. Sub-command groups live in sibling modules and import heavy
dependencies (torch, brax) only when run, so ``mirrorpo --help`` stays fast."""

from __future__ import annotations

import contextlib

import typer

from mirrorpo.cli.agents import app as agents_app
from mirrorpo.cli.data import app as data_app
from mirrorpo.cli.experiments import bench, compare, demo, discover, judge
from mirrorpo.cli.llm import app as llm_app
from mirrorpo.cli.losses import landscape, losses_command, objectives_command

app = typer.Typer(
    name="mirrorpo",
    help="A JAX laboratory for preference-optimization losses: measure, discover (MPO), transfer to LLMs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("losses")(losses_command)
app.command("objectives")(objectives_command)
app.command("landscape")(landscape)
app.command("demo")(demo)
app.command("bench")(bench)
app.command("discover")(discover)
app.command("compare")(compare)
app.command("judge")(judge)

# --- sub-command groups (one line each) ---
app.add_typer(agents_app, name="agents")
app.add_typer(llm_app, name="llm")
app.add_typer(data_app, name="data")


def main() -> None:
    """Entry point: run the app, turning mirrorpo's user errors into one clear line and exit code 2."""
    from mirrorpo.errors import MirrorpoError

    try:
        app(standalone_mode=False)
    except MirrorpoError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except Exception as exc:  # usage errors (a bad option value) arrive here in non-standalone mode
        if isinstance(exc, _usage_errors()):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise


def _usage_errors() -> tuple[type, ...]:
    """Click's usage-error classes: typer ≥ 0.29 carries its own copy of click (typer._click)."""
    import importlib

    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError):
            found.append(importlib.import_module(module).ClickException)
    return tuple(found)
