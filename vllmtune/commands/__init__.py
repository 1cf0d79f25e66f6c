"""One module per command: its ``Args`` (the one declaration of its options, see
:mod:`vllmtune.util.argspec`) in, a typed result out, no printing (:mod:`vllmtune.cli` prints).
"""
