from dockyard.adapters.compose.binary import find_compose_binary
from dockyard.adapters.compose.runner import CliComposeRunner

__all__ = ["CliComposeRunner", "find_compose_binary"]
