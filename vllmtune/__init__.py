"""vllmtune: declarative YAML profiles to running, tuned vLLM servers."""

__version__ = "0.1.0"
