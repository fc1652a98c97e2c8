"""Several engines (issue 12): the registry, its watcher, and the cluster's capacity."""
