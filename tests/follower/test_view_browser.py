"""`follower replay --view` in real time, watched by a real headless Chromium.

The follower runs as a subprocess on a FluidSynth render of a test piece; the
browser loads the page it serves and must show the piece's name and title, the
notes of its roll and a cursor that moves on while the music plays; after the
recording ends the page says so and Ctrl-C ends the lingering follower cleanly.
"""

import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import sigint_default
from studies.headless_browser import HeadlessBrowser, find_browser

pytestmark = pytest.mark.skipif(find_browser() is None,
                                reason="no Chromium-type browser installed (apt-get install chromium, as "
                                       "setup.sh does; or set SCOREFOLLOW_BROWSER)")

ROLL = "document.getElementById('roll')"
PROBE = (f"({{piece: document.getElementById('piece').textContent, title: document.getElementById('title')"
         f".textContent, state: window.viewState.snap && window.viewState.snap.state, cursor_s: {ROLL}.dataset"
         f".cursorS, cursor_x: {ROLL}.dataset.cursorX, notes: +{ROLL}.dataset.notes, t: window.viewState.snap "
         f"&& window.viewState.snap.t, conn: document.getElementById('conn').textContent}})")


def start_replay(audio, bundle, index, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "follower.cli", "replay", str(audio), "--bundle", str(bundle),
                             "--index", str(index), "--osc", "127.0.0.1:9", "--quiet", "--view",
                             "--view-port", "0", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=sigint_default)
    lines: list = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        url = next((m.group(0) for line in list(lines) if (m := re.search(r"http://\S+/", line))), None)
        if url:
            return proc, url, lines
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the follower printed no live view address: {''.join(lines)}")


def test_the_page_follows_a_real_time_replay_in_a_real_browser(chroma_bundle, corpus_index, rendered):
    proc = None
    try:
        # the browser first: on a busy machine its start took longer than the 13 s recording lasts
        with HeadlessBrowser() as browser:
            proc, url, lines = start_replay(rendered["path"], chroma_bundle, corpus_index, "--view-linger", "30")
            browser.open(url)
            assert browser.evaluate("document.title") == "scorefollow live view"
            browser.wait_for(f"window.viewState.events > 0 && {ROLL}.dataset.notes > 0", timeout_s=30)
            # the follower's first half second after a lock settles its place (on this test piece's chords of
            # one beat the fine aligner starts a chord ahead and waits there): the cursor is timed after it
            time.sleep(1.0)
            first = browser.evaluate(PROBE)
            time.sleep(1.5)
            second = browser.evaluate(PROBE)
            for probe in (first, second):
                assert probe["piece"] == "piece3" and probe["title"] == "Test piece 3"
                assert probe["state"] == "following" and probe["notes"] > 10
            assert second["t"] > first["t"] + 1.0  # the events kept coming, in real time
            moved = float(second["cursor_s"]) - float(first["cursor_s"])
            assert moved == pytest.approx(rendered["tempo"] * (second["t"] - first["t"]), abs=0.6)
            assert second["cursor_x"] != first["cursor_x"]  # the cursor moved on the canvas itself
            browser.wait_for("window.viewState.ended", timeout_s=30)  # the recording is over ...
            assert browser.evaluate(PROBE)["conn"] == "input ended"  # ... the page says so and stays
        assert proc.poll() is None, "the follower should linger after the replay"
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends the lingering early and cleanly
        assert proc.wait(timeout=10) == 0
        assert any("stays at" in line and "Ctrl-C" in line for line in lines)
        assert not any("Traceback" in line for line in lines), "".join(lines)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
