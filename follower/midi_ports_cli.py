"""``follower midi-ports``: the MIDI inputs and outputs (for ``--midi-in`` and ``--midi-out``)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("midi-ports", help="list MIDI input and output ports (for --midi-in / --midi-out)",
                              description="List the MIDI ports python-rtmidi sees. Give a port to --midi-in "
                                          "or --midi-out by its name or a unique part of it, or as "
                                          "virtual:NAME to create one that other programs connect to.")
    p.set_defaults(func=run)


def run(args) -> int:
    from .midi_ports import port_names

    inputs, outputs = port_names()
    for title, names, option in (("MIDI inputs", inputs, "--midi-in"), ("MIDI outputs", outputs, "--midi-out")):
        print(f"{title} (for {option}):")
        for name in names:
            print(f"  {name}")
        if not names:
            print("  none (connect a device, or use virtual:NAME)")
    return 0
