"""``manage.py serve``: apply migrations, then serve the app with Daphne and print its URL.

With ``--processes N`` several Daphne processes share one listening socket (the kernel
hands each new connection to one of them); they share the database and, through Redis,
the channel layer, so a class's followers on any process follow the instructor. Each
process starts its own subject process, where the traced scenario views run.

Every process started from here ends with the one that started it, even killed with -9
(visualizer/lifeline.py); at start-up, what a server stopped mid-run left behind is
cleaned up first (visualizer/run_state.recover).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from visualizer import serve_asgi
from visualizer.lifeline import spawn
from visualizer.playground.sandbox import LISTEN_ENV, playground_summary
from visualizer.traces.run_state import recover


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses on its networks (not loopback), as the system lists
    them; nothing is sent anywhere to find them."""
    found: list[str] = []
    try:
        listing = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        for line in listing.splitlines():
            words = line.split()
            if "inet" in words:
                found.append(words[words.index("inet") + 1].split("/")[0])
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    if not found:
        with contextlib.suppress(OSError):
            for *_, address in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
                found.append(str(address[0]))
    return [a for a in dict.fromkeys(found) if not a.startswith("127.")]


def proxy_headers() -> list[str]:
    """Daphne believes X-Forwarded-For (a client's address, for logs and limits) only when
    told the server is behind a proxy that sets it: any client can send one."""
    return ["--proxy-headers"] if settings.TRUST_PROXY_HEADERS else []


class Command(BaseCommand):
    help = "Apply migrations and serve the visualizer with Daphne (HTTP and WebSockets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="address to listen on (127.0.0.1)")
        parser.add_argument(
            "--class",
            dest="for_class",
            action="store_true",
            help="serve a class on the local network: listen on every address, accept this "
            "machine's network addresses, and show students the one they can reach",
        )
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="Daphne processes sharing the address (more than one needs REDIS_URL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port, processes = options["port"], options["processes"]
        host = options["host"] or ("0.0.0.0" if options["for_class"] else "127.0.0.1")
        if options["for_class"]:
            self.open_to_the_network(port)
        if processes < 1:
            raise CommandError("--processes must be 1 or more.")
        if processes > 1 and not settings.REDIS_URL:
            raise CommandError(
                "Several processes share their channel layer through Redis: set REDIS_URL "
                "(for example redis://127.0.0.1:6379/0)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        # Whatever a server killed mid-run left: its processes stopped, its runs marked
        # interrupted (visualizer/traces/run_state.py).
        if said := recover().message():
            self.stdout.write(said)
        shown = f"[{host}]" if ":" in host else host
        os.environ[LISTEN_ENV] = host
        self.stdout.write(playground_summary())
        self.stdout.write(
            f"Serving on http://{shown}:{port}/ with {processes} Daphne "
            f"{'process' if processes == 1 else 'processes'} "
            "(Ctrl+C to stop)"
        )
        self.stdout.flush()
        if processes == 1:
            serve_asgi.main(["-b", host, "-p", str(port), *proxy_headers()])
            return
        self.serve_shared(host, port, processes)

    def open_to_the_network(self, port: int) -> None:
        """Accept requests for this machine's network addresses and show students the
        first (or CLASS_URL, if set), here and in every process started from here."""
        addresses = lan_addresses()
        if not addresses and not settings.CLASS_URL:
            raise CommandError(
                "No network address found for this machine; set CLASS_URL to the address "
                "students can reach, e.g. CLASS_URL=http://192.168.1.20:8000"
            )
        class_url = settings.CLASS_URL or f"http://{addresses[0]}:{port}"
        hosts = [*settings.ALLOWED_HOSTS, *addresses, urlsplit(class_url).hostname or ""]
        settings.ALLOWED_HOSTS = list(dict.fromkeys(host for host in hosts if host))
        settings.CLASS_URL = class_url
        os.environ["ALLOWED_HOSTS"] = ",".join(settings.ALLOWED_HOSTS)
        os.environ["CLASS_URL"] = class_url
        self.stdout.write(f"Students join at {class_url}/join/ (on this network)")

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
            # so each records all of the runs it starts (visualizer/scenarios/subject.py).
            command = [
                sys.executable, "-m", "visualizer.serve_asgi", "--fd", str(fd), *proxy_headers(),
            ]  # fmt: skip
            # Each ends when this process does (visualizer/lifeline.py).
            children.append(spawn(command, env=dict(os.environ), pass_fds=[fd]))
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
