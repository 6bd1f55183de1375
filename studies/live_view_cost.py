"""``python -m studies.live_view_cost [--modes none,sse,browser] [--repeats 2]``: what ``--view`` costs the follower.

Replays the example recording in real time (``follower replay --stats``) and reads
the per-update latency and real-time factor it reports, in three set-ups:

  none     no view
  sse      ``--view`` with one plain server-sent-events client (curl) reading the stream
  browser  ``--view`` with the page open in headless Chromium (:mod:`studies.headless_browser`),
           started and settled before the replay so that its start-up is not counted; also
           the CPU seconds the browser's processes used during the replay (``ps``, whole seconds)

The set-ups alternate, ``--repeats`` times. On a 2-core machine the browser competes
with the follower for the cores; that, not the server, is what shows in p99.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time

from follower.paths import REPO_ROOT

MODES = ("none", "sse", "browser")


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.live_view_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", default=str(REPO_ROOT / "examples" / "chorale_excerpt.ogg"))
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--debug", action="store_true")
    return run_main(_run, p.parse_args(argv))


def browser_cpu_s(profile: str) -> int:
    out = subprocess.run(["ps", "-eo", "times=,args="], capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if profile in line)


def one(audio: str, mode: str) -> str:
    from .headless_browser import HeadlessBrowser

    browser = client = None
    if mode == "browser":
        browser = HeadlessBrowser()
        browser.open("about:blank")
        time.sleep(5)  # let its start-up finish before the replay starts
        cpu0 = browser_cpu_s(browser.profile)
    cmd = [sys.executable, "-m", "follower.cli", "replay", audio, "--stats", "--quiet", "--osc", "127.0.0.1:9"]
    if mode != "none":
        cmd += ["--view", "--view-port", "0", "--view-linger", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    if mode != "none":
        while not any("live view" in line for line in lines) and proc.poll() is None:
            time.sleep(0.05)
        url = re.search(r"http://\S+/", "".join(lines)).group(0)
        if browser:
            browser.open(url)
        else:
            client = subprocess.Popen(["curl", "-sN", url + "events"], stdout=subprocess.PIPE, text=True)
            received: list = []  # read as it comes: a full pipe would stall the client, not measure it
            threading.Thread(target=lambda: received.extend(client.stdout), daemon=True).start()
    proc.wait()
    reader.join(2)
    extra = ""
    if browser:
        extra = (f"; the page got {browser.evaluate('window.viewState.events')} events; "
                 f"browser CPU {browser_cpu_s(browser.profile) - cpu0} s")
        browser.close()
    if client:
        client.terminate()
        client.wait()
        extra = f"; the client got {sum(line.startswith('event: state') for line in received)} events"
    stats = next((line for line in lines if line.startswith("stats")), "".join(lines))
    found = re.search(r"p50 .*?factor [\d.]+", stats)
    return (found.group(0) if found else stats.strip()) + extra


def _run(args) -> int:
    from follower.errors import ConfigError

    modes = args.modes.split(",")
    if not set(modes) <= set(MODES):
        raise ConfigError(f"--modes {args.modes}: choose from {', '.join(MODES)}")
    for _ in range(args.repeats):
        for mode in modes:
            print(f"{mode:8s} {one(args.audio, mode)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
