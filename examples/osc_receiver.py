"""Print what the follower sends over OSC: a stand-in for Max/MSP.

    python examples/osc_receiver.py [--port 9000]      # in one terminal
    follower replay examples/chorale_excerpt.ogg       # in another
"""

import argparse

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--all", action="store_true", help="also print every position and candidates message")
    args = p.parse_args()
    seen = {"n": 0}

    def piece(address, piece_id, title, confidence):
        print(f"piece      {piece_id}  '{title}'  confidence {confidence:.2f}")

    def position(address, beats, seconds, confidence):
        seen["n"] += 1
        if args.all or seen["n"] % 20 == 0:  # once a second at the default update rate
            print(f"position   beat {beats:7.2f}   {seconds:7.2f} s   confidence {confidence:.2f}")

    def tempo(address, ratio, bpm):
        if args.all or seen["n"] % 20 == 0:
            print(f"tempo      x{ratio:.3f}  {bpm:.1f} bpm")

    def state(address, value):
        print(f"state      {value}")

    def candidates(address, *pairs):
        if args.all:
            print("candidates " + ", ".join(f"{pairs[i]} {pairs[i + 1]:.3f}" for i in range(0, len(pairs), 2)))

    def also_at(address, *pairs):
        if len(pairs) != seen.get("also_n", 0):  # the places move with the music: print when their number changes
            places = ", ".join(f"beat {pairs[i]:.2f} ({pairs[i + 1]:.2f} s)" for i in range(0, len(pairs), 2))
            print(f"also at    {places}" if places else "also at    nowhere else now: the place is unique")
            seen["also_n"] = len(pairs)

    d = Dispatcher()
    d.map("/follower/piece", piece)
    d.map("/follower/position", position)
    d.map("/follower/tempo", tempo)
    d.map("/follower/state", state)
    d.map("/follower/candidates", candidates)
    d.map("/follower/also_at", also_at)
    server = BlockingOSCUDPServer((args.host, args.port), d)
    print(f"listening for /follower/* on udp://{args.host}:{args.port} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
