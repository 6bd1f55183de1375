"""``python -m studies.live_view_figure -o docs/figures/live_view.png``: the live view, photographed.

Replays the example recording (``examples/chorale_excerpt.ogg``) in real time
through the shipped bundle with ``--view``, loads the page in headless Chromium
(:mod:`studies.headless_browser`), waits until the follower has heard ``--at``
seconds and follows a piece, saves a screenshot and stops the follower with Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time

from follower.paths import REPO_ROOT


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.live_view_figure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--out", default="docs/figures/live_view.png", help="PNG to write")
    p.add_argument("--audio", default=str(REPO_ROOT / "examples" / "chorale_excerpt.ogg"))
    p.add_argument("--at", type=float, default=12.0, metavar="S", help="seconds of audio heard at the shot")
    p.add_argument("--size", default="1280x640", metavar="WxH", help="browser window size")
    p.add_argument("--debug", action="store_true")
    return run_main(_run, p.parse_args(argv))


def _run(args) -> int:
    from follower.errors import ConfigError

    from .headless_browser import BrowserError, HeadlessBrowser

    width, height = (int(v) for v in args.size.split("x"))
    proc = subprocess.Popen([sys.executable, "-m", "follower.cli", "replay", args.audio, "--view", "--view-port", "0",
                             "--quiet", "--osc", "127.0.0.1:9"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    lines: list = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    try:
        url = None
        while url is None and proc.poll() is None:
            url = next((m.group(0) for line in list(lines) if (m := re.search(r"http://\S+/", line))), None)
            time.sleep(0.1)
        if url is None:
            raise ConfigError(f"the follower stopped before serving the view: {''.join(lines).strip()}")
        try:
            with HeadlessBrowser(width=width, height=height) as browser:
                browser.open(url)
                browser.wait_for(f"window.viewState.snap && window.viewState.snap.t >= {args.at} && "
                                 "window.viewState.snap.state === 'following' && "
                                 "+document.getElementById('roll').dataset.notes > 0", timeout_s=args.at + 60)
                browser.screenshot(args.out)
        except BrowserError as e:
            raise ConfigError(str(e)) from e
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
