"""Helpers shared by the test folders (no tests here): `cli` runs the installed `cutout`
command, `service` serves the app in-process and makes test images."""
