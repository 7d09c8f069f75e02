"""``compound serve``: the REST API, the dashboard and /metrics (compound.server)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from compound.cli.context import app_context


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        ctx: typer.Context,
        listen: Annotated[
            str, typer.Option("--listen", help="HOST:PORT to listen on (loopback by default).")
        ] = "127.0.0.1:8765",
        project: Annotated[
            list[str] | None,
            typer.Option(
                "--project",
                help="A Compose file to serve as one more project (repeatable); the global"
                " -f/-p/--project-directory make the first one.",
            ),
        ] = None,
        tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate.")] = None,
        tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key.")] = None,
        insecure_listen: Annotated[
            bool,
            typer.Option(
                "--insecure-listen",
                help="Listen beyond loopback without TLS (tokens travel in clear text).",
            ),
        ] = False,
    ) -> None:
        """Serve the REST API, the web dashboard and Prometheus /metrics.

        The first start creates an operator token and a read-only token and
        prints them once."""
        from compound.server.run import ServeOptions
        from compound.server.run import serve as run_server
        from compound.spec import LoadOptions

        g = app_context(ctx).opts
        first = LoadOptions(
            files=tuple(g.files),
            project_name=g.project_name,
            project_directory=g.project_directory,
            env_files=tuple(g.env_files),
            profiles=tuple(g.profiles),
        )
        more = [dataclasses.replace(first, files=(f,), project_name=None) for f in project or []]
        projects = [first, *more] if (g.files or g.project_name or not more) else more
        run_server(
            ServeOptions(
                listen=listen,
                tls_cert=tls_cert,
                tls_key=tls_key,
                insecure_remote=insecure_listen,
            ),
            projects,
        )
