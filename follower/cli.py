"""``follower``: the real-time score follower's command line."""

import sys

from . import devices_cli, index_cli, listen_cli, midi_ports_cli, replay_cli
from .cliutil import main_for

DESCRIPTION = """\
Listen to a performance (microphone or audio file), recognise which piece of a MIDI
corpus is played and where, and send piece, position, tempo and state over OSC.

  follower index build CORPUS/ -o my.index     embed a folder of MIDI files
  follower replay performance.flac             replay a recording through the follower
  follower listen --device 2                   follow live input
  follower devices                             list audio inputs
  follower replay performance.mid              follow a MIDI performance (or --midi-in PORT live)
  follower midi-ports                          list MIDI ports (--midi-in, --midi-out)
"""

# each module exposes register(subparsers); they are written one per role
COMMAND_MODULES = [index_cli, replay_cli, listen_cli, devices_cli, midi_ports_cli]


def main(argv=None) -> int:
    return main_for("follower", DESCRIPTION, COMMAND_MODULES, argv)


if __name__ == "__main__":
    sys.exit(main())
