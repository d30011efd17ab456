"""Serve the ASGI application with Daphne, its runtime started first:
``python -m visualizer.serve_asgi DAPHNE-OPTIONS`` (the application is added).

Every Daphne this app starts (``serve``, the subject process, the test and bench servers)
runs this way: a child first watches the process that started it (and ends with it,
visualizer/lifeline.py), then starts its services, then serves.
"""

from __future__ import annotations

import sys

from daphne.cli import CommandLineInterface

from visualizer import lifeline

APPLICATION = "visualizer.asgi:application"


def main(arguments: list[str]) -> None:
    # Started by another process (a UI, serve --processes, a test): end with it.
    lifeline.watch_parent(lifeline.exit_now)
    from visualizer.asgi import application

    application.start()
    CommandLineInterface().run([*arguments, APPLICATION])


if __name__ == "__main__":
    main(sys.argv[1:])
