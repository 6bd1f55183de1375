"""OSC out: what Max/MSP (or Pd, or any OSC client) receives, over UDP.

Addresses (all values plain Python int/float/str; python-osc rejects numpy scalars):

  /follower/piece       s:piece_id s:title f:confidence   on change, then once a second
  /follower/position    f:position_beats f:position_s f:confidence   every update while a piece is locked
  /follower/tempo       f:ratio f:bpm                     every update while a piece is locked
  /follower/state       s:searching|following|lost        on change, then once a second;
                        s:stopped once when the follower ends (the source ended, an error, Ctrl-C, SIGTERM)
  /follower/candidates  s:piece_id f:score ... (top five)  every update
  /follower/also_at     f:position_beats f:position_s ...   every update while a piece is locked and the
                        music heard is written out elsewhere in it too (the other places, earliest
                        first); once with no arguments when that ends

Several followers may send to one port (UDP allows any number of senders); their
messages then interleave, so give each its own ``--osc-prefix`` (``/violin/piece``,
``/piano/piece``...) to tell them apart.

Sending never blocks and never stops the follower: the socket is non-blocking, the
host is resolved once at start (so no DNS lookup per message), and send errors (an
ICMP "port unreachable" when nobody listens, a full buffer, a network that went away)
are counted, not raised; the first failure of a run is reported once on stderr.
"""

from __future__ import annotations

import socket
import sys

from .errors import ConfigError

DEFAULT_OSC = "127.0.0.1:9000"
DEFAULT_PREFIX = "/follower"
RESEND_S = 1.0
STOPPED = "stopped"  # the last /follower/state of a run
# nobody listening on loopback (ECONNREFUSED after an ICMP port unreachable) is normal, not worth a line
QUIET_ERRNOS = {111}


def parse_host_port(text: str, option: str = "--osc", example: str = DEFAULT_OSC) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:9000``) -> (host, port), or ConfigError naming ``option``."""
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT, e.g. {example}")
    try:
        port_n = int(port)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: port {port!r} is not a number; expected HOST:PORT") from None
    if not 1 <= port_n <= 65535:
        raise ConfigError(f"{option} {text!r}: port {port_n} is outside 1..65535")
    return host, port_n


def check_prefix(prefix: str) -> str:
    """An OSC address prefix such as ``/follower`` or ``/stage/violin``, or ConfigError."""
    parts = str(prefix).split("/")
    if (not str(prefix).startswith("/") or str(prefix).endswith("/") or any(not p for p in parts[1:])
            or any(c in str(prefix) for c in " #*,?[]{}")):
        raise ConfigError(f"--osc-prefix {prefix!r}: expected an OSC address such as /follower or /stage/violin "
                          "(no spaces, no trailing /, none of #*,?[]{{}})")
    return str(prefix)


class OscSender:
    """Non-blocking OSC client for the follower's messages; see the module docstring.

    ``prefix`` replaces ``/follower`` in every address, so that several followers can
    send to one receiver (one port) and still be told apart.
    """

    def __init__(self, target: str = DEFAULT_OSC, prefix: str = DEFAULT_PREFIX):
        from pythonosc.udp_client import SimpleUDPClient

        self.prefix = check_prefix(prefix)
        host, port = parse_host_port(target)
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise ConfigError(f"--osc {target}: cannot resolve host {host!r} ({e.strerror}); "
                              "give an IP address or a known host name") from e
        family, _, _, _, addr = info[0]
        # a connected probe socket makes the kernel check the route now, not at the first message
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.connect(addr)
        except OSError as e:
            raise ConfigError(f"--osc {target}: cannot send there ({e.strerror or e}); "
                              "check the address and the network") from e
        finally:
            probe.close()
        self.target = f"{addr[0]}:{addr[1]}"
        self.client = SimpleUDPClient(addr[0], addr[1], family=family)
        self.errors = 0
        self.sent = 0
        self._last_piece = None
        self._last_state = None
        self._piece_sent_t = -1e9
        self._state_sent_t = -1e9
        self._also_sent = False  # the last /follower/also_at named places

    def send(self, address: str, *values) -> None:
        if self.prefix != DEFAULT_PREFIX and address.startswith(DEFAULT_PREFIX + "/"):
            address = self.prefix + address[len(DEFAULT_PREFIX):]
        try:
            self.client.send_message(address, list(values))
            self.sent += 1
        except OSError as e:
            self.errors += 1  # nobody listening, the buffer is full, no route: drop, never block
            if self.errors == 1 and e.errno not in QUIET_ERRNOS:
                print(f"warning: OSC to {self.target}: sending failed ({e.strerror or e}); the follower carries on "
                      "and keeps trying (failures are counted in --stats)", file=sys.stderr, flush=True)

    def emit(self, u) -> None:
        """Send what one engine update means for Max."""
        conf = float(u.confidence)
        if u.piece is not None:
            if u.piece != self._last_piece or u.t - self._piece_sent_t >= RESEND_S:
                self.send("/follower/piece", str(u.piece), str(u.title or u.piece), conf)
                self._piece_sent_t = u.t
            self.send("/follower/position", float(u.position_beats), float(u.position_s), conf)
            self.send("/follower/tempo", float(u.tempo), float(u.bpm))
        also = [float(x) for b, s in zip(u.also_at_beats, u.also_at_s) for x in (b, s)]
        if also or self._also_sent:
            self.send("/follower/also_at", *also)
            self._also_sent = bool(also)
        self._last_piece = u.piece
        if u.state != self._last_state or u.t - self._state_sent_t >= RESEND_S:
            self.send("/follower/state", str(u.state))
            self._last_state, self._state_sent_t = u.state, u.t
        flat = []
        for pid, score in u.candidates[:5]:
            flat += [str(pid), float(score)]
        if flat:
            self.send("/follower/candidates", *flat)

    def close(self) -> None:
        """Tell the receiver that the follower has stopped, then close the socket."""
        self.send("/follower/state", STOPPED)
        self.client._sock.close()
