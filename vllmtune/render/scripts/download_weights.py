import os, sys, time
from huggingface_hub import HfApi, snapshot_download
start = time.time()
for spec in sys.argv[1:]:
    repo, _, rev = spec.partition("@")
    files = HfApi().list_repo_files(repo, revision=rev or None)
    # What vLLM reads: safetensors when there are any (never both formats), configs, tokenizer;
    # not the original/ or consolidated* copies some repositories carry as well.
    weights = ["*.safetensors"] if any(f.endswith(".safetensors") for f in files) else ["*.bin", "*.pt"]
    patterns = [*weights, "*.json", "*.model", "*.txt", "*.tiktoken", "*.py", "*.jinja"]
    hf_format = [f for f in files if f.endswith(".safetensors") and not f.startswith(("original/", "consolidated"))]
    skip = ["original/*"] + (["consolidated*"] if hf_format else [])
    print(f"vllmtune: downloading {spec}", flush=True)
    path = snapshot_download(repo, revision=rev or None, allow_patterns=patterns, ignore_patterns=skip)
    print(f"vllmtune: {spec} -> {path} ({time.time() - start:.0f}s)", flush=True)
marker = os.environ.get("VLLMTUNE_MARKER")
if marker:
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w") as fh:
        fh.write("\n".join(sys.argv[1:]) + "\n")
print(f"vllmtune: weights ready in {time.time() - start:.0f}s", flush=True)
