"""``manage.py serve``: apply migrations, then serve the app with Daphne and print its URL.

With ``--processes N`` several Daphne processes share one listening socket (the kernel
hands each new connection to one of them); they share the database and, through Redis,
the channel layer, so a class's followers on any process follow the instructor. Each
process starts its own subject process, where the traced scenario views run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

APPLICATION = "visualizer.asgi:application"


def proxy_headers() -> list[str]:
    """Daphne believes X-Forwarded-For (a client's address, for logs and limits) only when
    told the server is behind a proxy that sets it: any client can send one."""
    return ["--proxy-headers"] if settings.TRUST_PROXY_HEADERS else []


class Command(BaseCommand):
    help = "Apply migrations and serve the visualizer with Daphne (HTTP and WebSockets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="Daphne processes sharing the address (more than one needs REDIS_URL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port, processes = options["host"], options["port"], options["processes"]
        if processes < 1:
            raise CommandError("--processes must be 1 or more.")
        if processes > 1 and not settings.REDIS_URL:
            raise CommandError(
                "Several processes share their channel layer through Redis: set REDIS_URL "
                "(for example redis://127.0.0.1:6379/0)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        shown = f"[{host}]" if ":" in host else host
        self.stdout.write(
            f"Serving on http://{shown}:{port}/ with {processes} Daphne process(es) "
            "(Ctrl+C to stop)"
        )
        self.stdout.flush()
        if processes == 1:
            CommandLineInterface().run(["-b", host, "-p", str(port), *proxy_headers(), APPLICATION])
            return
        self.serve_shared(host, port, processes)

    def serve_shared(self, host: str, port: int, processes: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1024)
        listener.setblocking(False)
        fd = listener.fileno()
        os.set_inheritable(fd, True)
        children = []
        for _ in range(processes):
            # Each process starts a subject process of its own and sends its runs there,
            # so each records all of the runs it starts (visualizer/subject.py).
            command = [
                sys.executable, "-m", "daphne", "--fd", str(fd), *proxy_headers(), APPLICATION,
            ]  # fmt: skip
            children.append(subprocess.Popen(command, pass_fds=[fd]))
        listener.close()
        try:
            for child in children:
                child.wait()
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                child.wait()
