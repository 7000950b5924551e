"""The demos and their synthetic datasets: scripts of the source checkout,
not part of the installed package (run them through ``tools/demo.py`` and
``tools/dive_demo.py``)."""
