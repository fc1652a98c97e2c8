"""Images and builds (SPEC §6): the local image list, pulls and builds run as jobs a
client can watch, pushes, and the registry credentials they use."""
