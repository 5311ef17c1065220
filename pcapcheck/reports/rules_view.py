"""``pcapcheck rules`` and ``pcapcheck explain RULE``: the catalogue as a person reads it."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..catalogue import PROFILE_DEFAULT, RuleSpec
from ..profiles import PROFILES

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_rules(catalogue: Mapping[str, RuleSpec], console: Console) -> None:
    """One row per rule: id, default severity, category, title; grouped by category."""
    table = Table(title=f"pcapcheck rules ({len(catalogue)})", title_justify="left", expand=False)
    table.add_column("rule", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("category", no_wrap=True)
    table.add_column("title")
    for spec in sorted(catalogue.values(), key=lambda s: (s.category, s.id)):
        severity = spec.severity.value
        table.add_row(
            escape(spec.id),
            f"[{SEVERITY_STYLE[severity]}]{severity}[/]",
            escape(spec.category),
            escape(spec.title),
        )
    console.print(table)
    console.print("Details: pcapcheck explain RULE", markup=False)


def print_explanation(spec: RuleSpec, console: Console) -> None:
    """Everything about one rule: explanation, RFC references, parameters with defaults, remedy."""
    severity = spec.severity.value
    console.print(f"[bold]{escape(spec.id)}[/]: {escape(spec.title)}")
    console.print(f"severity: [{SEVERITY_STYLE[severity]}]{severity}[/]   category: {escape(spec.category)}")
    console.print(f"RFC: {escape('; '.join(spec.rfc))}")
    console.print()
    _print_prose(spec.explanation, console)
    if spec.parameters:
        console.print()
        console.print("[bold]Parameters[/] (override with --param RULE.NAME=VALUE)")
        for name, default in spec.parameters.items():
            console.print(f"  {name} = {_default_text(name, default)}", markup=False)
            description = spec.parameter_descriptions.get(name, "")
            if description:
                console.print(f"      {description}", markup=False)
    console.print()
    console.print("[bold]Remedy[/]")
    _print_prose(spec.remedy, console)
    if spec.example:
        console.print()
        console.print("[bold]Example[/]")
        console.print(spec.example, markup=False, soft_wrap=True)  # a ladder must keep its columns
    if spec.path:
        console.print()
        console.print(f"(from {spec.path})", markup=False, style="dim")


def _print_prose(text: str, console: Console) -> None:
    """Rule files wrap their prose by hand; re-flow each paragraph to the terminal's width."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    for i, paragraph in enumerate(paragraphs):
        if i:
            console.print()
        console.print(paragraph, markup=False)


def _default_text(name: str, default: object) -> str:
    if default == PROFILE_DEFAULT:
        values = ", ".join(f"{p.name} {getattr(p, name):g}" for p in PROFILES.values())
        return f"profile ({values})"
    if isinstance(default, bool):
        return "true" if default else "false"
    return f"{default:g}" if isinstance(default, float) else str(default)
