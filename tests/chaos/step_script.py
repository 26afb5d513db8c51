"""The chaos suite's step: records its execution in a ledger, computes a checkable output.

argv: LEDGER_DIR OUT_DIR [IN_DIR ...]. The output is sha256(step name + inputs' values), so
the driver can recompute every expected value from the DAG alone.
"""

import hashlib
import os
import pathlib
import random
import sys
import threading
import time

ledger_dir, out_dir, *in_dirs = sys.argv[1:]
run, step, attempt = (
    os.environ[k] for k in ("HEADRACE_RUN_ID", "HEADRACE_STEP_NAME", "HEADRACE_ATTEMPT")
)
ledger = pathlib.Path(ledger_dir) / run / f"{step}.{attempt}.{os.getpid()}"
ledger.parent.mkdir(parents=True, exist_ok=True)


def tick() -> None:
    """Write the time every 20 ms: the last tick tells when the process stopped running."""
    while True:
        with ledger.open("a") as f:
            f.write(f"tick {time.time():.4f}\n")
        time.sleep(0.02)


with ledger.open("a") as f:
    f.write(f"start {time.time():.4f}\n")
threading.Thread(target=tick, daemon=True).start()
h = hashlib.sha256(step.encode())
for d in sorted(in_dirs):
    h.update((pathlib.Path(d) / "value").read_bytes())
time.sleep(random.uniform(0.1, 0.6))
out = pathlib.Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "value").write_text(h.hexdigest())
with ledger.open("a") as f:
    f.write(f"end {time.time():.4f}\n")
