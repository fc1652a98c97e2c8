from dockyard.adapters.engine.client import DockerEngine

__all__ = ["DockerEngine"]
