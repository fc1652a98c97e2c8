"""``python -m dockyard.cli``: the same as the ``dockyard`` command."""

from dockyard.cli import main

main()
