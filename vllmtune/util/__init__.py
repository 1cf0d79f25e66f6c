"""Small standard-library helpers shared across the package (layer L0: they import nothing of
vllmtune): atomic file writes (``files``), local ports (``net``), "is this a local path"
(``paths``), stopping a process group (``procs``), package data (``pkgdata``) and the one option
declaration (``argspec``)."""
