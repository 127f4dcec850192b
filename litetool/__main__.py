from litetool.cli import entry

entry()
