"""The ladder's parts: its options (args), rungs, and table/report; the command that runs it is
:mod:`vllmtune.commands.ladder`."""
