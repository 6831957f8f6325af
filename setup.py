# Setuptools reads everything from setup.cfg; this shim lets older pip
# versions install the project in editable mode.
import setuptools

setuptools.setup()
