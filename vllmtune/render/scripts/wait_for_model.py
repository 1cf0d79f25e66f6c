import os, time
marker, start = os.environ["VLLMTUNE_MARKER"], time.time()
while not os.path.exists(marker):
    print(f"vllmtune: waiting for Job {os.environ['VLLMTUNE_JOB']} ({time.time() - start:.0f}s)", flush=True)
    time.sleep(15)
print("vllmtune: weights ready", flush=True)
