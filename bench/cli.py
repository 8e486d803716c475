"""``vitrine bench [--quick] [--only SECTIONS]`` (docs/performance.md)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def bench_command(
    quick: bool = typer.Option(False, "--quick", help="Smaller sizes, one repeat (< 3 min)."),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated sections: floor,ingest,e2e,scale,accuracy."
    ),
) -> None:
    """Measure speed, scale and accuracy, each beside its floor and baselines, in one run."""
    from bench.runner import SECTIONS, Sizes, render_markdown, run_bench

    sections = tuple(SECTIONS) if not only else tuple(s.strip() for s in only.split(","))
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise typer.BadParameter(f"unknown section(s) {unknown}; known: {SECTIONS}")
    results = run_bench(sections, Sizes.quick() if quick else Sizes.full())
    typer.echo(render_markdown(results))
    if "written" in results["meta"]:
        typer.echo(f"written: {results['meta']['written']} (and .md)")


def register(app: typer.Typer) -> None:
    """Mount ``vitrine bench`` on the root ``vitrine`` app."""
    app.command("bench")(bench_command)
