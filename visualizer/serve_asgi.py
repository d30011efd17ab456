"""Serve the ASGI application with Daphne, its runtime started first:
``python -m visualizer.serve_asgi DAPHNE-OPTIONS`` (the application is added).

Every Daphne this app starts (``serve``, the subject process, the test and bench servers)
runs this way: a child first watches the process that started it (and ends with it,
visualizer/lifeline.py), then starts its services, then serves. (The playground's worker,
which serves one edited view inside its sandbox, starts its Daphne itself:
visualizer/playground/worker.py.)
"""

from __future__ import annotations

import os
import socket
import sys

from daphne.cli import CommandLineInterface

from visualizer import lifeline
from visualizer.playground.sandbox import LISTEN_ENV

APPLICATION = "visualizer.asgi:application"


def listening_hosts(arguments: list[str]) -> list[str]:
    """The addresses Daphne will listen on, from its options (-b/--bind, --fd); "?" for
    an endpoint or a Unix socket, whose reach is not known."""
    hosts: list[str] = []
    for index, argument in enumerate(arguments[:-1]):
        value = arguments[index + 1]
        if argument in ("-b", "--bind"):
            hosts.append(value)
        elif argument == "--fd" and value.isdigit():
            try:
                shared = socket.socket(fileno=os.dup(int(value)))
            except OSError:
                hosts.append("?")
                continue
            with shared:
                hosts.append(str(shared.getsockname()[0]))
        elif argument in ("-e", "--endpoint", "-u", "--unix-socket"):
            hosts.append("?")
    if not hosts and not any(a in ("-b", "--bind", "--fd") for a in arguments):
        hosts.append("127.0.0.1")  # Daphne's default
    return hosts


def main(arguments: list[str]) -> None:
    # Started by another process (a UI, serve --processes, a test): end with it.
    lifeline.watch_parent(lifeline.exit_now)
    # The playground's local mode is allowed only while the server listens on loopback.
    os.environ[LISTEN_ENV] = ",".join(listening_hosts(arguments))
    from tracer.django_integration import stamp_daphne_arrivals
    from visualizer.asgi import application

    # A traced request's time starts when Daphne had it, not when the loop got to it.
    stamp_daphne_arrivals()
    application.start()
    CommandLineInterface().run([*arguments, APPLICATION])


if __name__ == "__main__":
    main(sys.argv[1:])
