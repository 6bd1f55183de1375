"""``follower devices``: the audio inputs PortAudio sees."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)


def register(subparsers) -> None:
    p = subparsers.add_parser("devices", help="list audio input devices (ids for `follower listen --device`)")
    p.set_defaults(func=run)


def run(args) -> int:
    from .audio_io import input_devices, require_sounddevice

    sd = require_sounddevice()
    devices = input_devices()
    if not devices:
        print("no audio input devices found (is a microphone or interface connected?)")
        return 1
    try:
        default = sd.default.device[0]
    except Exception:  # noqa: BLE001
        default = -1
    for d in devices:
        mark = "*" if d["id"] == default else " "
        print(f"{mark}{d['id']:3d}  {d['name']}  ({d['hostapi']}, {d['channels']} ch, {d['rate_hz']:g} Hz)")
    return 0
