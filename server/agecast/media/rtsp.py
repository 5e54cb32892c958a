"""RTSP out: an H.264 stream that monitors, hardware decoders and recorders pull by URL.

A small RTSP 1.0 server (RFC 2326) for one stream: ``OPTIONS``, ``DESCRIBE`` (SDP),
``SETUP`` (RTP over the RTSP connection, ``RTP/AVP/TCP;interleaved``, or over UDP to the
client's ports), ``PLAY``, ``TEARDOWN`` and ``GET_PARAMETER`` (keep-alive). H.264 goes in RTP
as RFC 6184 packetization mode 1 (a NAL unit per packet, FU-A fragments for larger ones), a 90
kHz clock taken from the frame's capture time, the marker on a picture's last packet. SPS and
PPS ride in band at every key frame (and in the SDP once known); a client joining asks for a
key frame, so its picture starts within a frame or two.

Who may pull is the server's business, not the network's: the stream is unreleased footage and
an actor's likeness. Every connection must present a token the :class:`Gate` admits, in the URL
(``rtsp://HOST:PORT/NAME?token=…``) or as the password of Basic authentication (the answer to a
401, as decoders that take ``rtsp://user:password@host/…`` send it); the gate is asked again
every :data:`RECHECK_S` while it plays, so a revoked link stops the stream.

Each playing client has its own queue and thread: a client that reads slowly loses its own
pictures (then waits for the next key frame), never another's or the live path's.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import queue
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

MAX_PAYLOAD = 1400  # RTP payload bytes: a packet fits a 1500-byte Ethernet frame over UDP
MAX_REQUEST = 8192  # bytes of one request's head
MAX_SESSIONS = 16
MAX_CONNECTIONS = 64  # open RTSP connections, playing or not; more are closed as accepted
HEAD_S = 10.0  # a connection not yet let in must send each request within this (slowloris)
KEY_EVERY_S = 1.0  # clients joining or resuming ask for a key frame at most this often
QUEUE_PICTURES = 8  # a client this many pictures behind loses the next ones
RECHECK_S = 2.0  # how often a playing client's admission is checked again
IDLE_S = 60.0  # a session with no request (UDP) or no connection ends after this
PT_H264 = 96
METHODS = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"


@dataclass(frozen=True)
class Admission:
    """Who was let in, and how to ask whether they still may watch."""

    who: str
    still_valid: Callable[[], bool]


class Gate(Protocol):
    def admit(self, token: str | None) -> Admission | str:
        """An :class:`Admission`, or why not (shown to the client as 401/403)."""
        ...


def nal_units(annexb: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex-B buffer, without start codes."""
    starts: list[tuple[int, int]] = []  # (start code position, payload position)
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0:
        begin = i - 1 if i > 0 and annexb[i - 1] == 0 else i
        starts.append((begin, i + 3))
        i = annexb.find(b"\x00\x00\x01", i + 3)
    for k, (_, payload) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(annexb)
        nal = annexb[payload:end]
        if nal:
            yield nal


def rtp_payloads(nals: list[bytes], max_payload: int = MAX_PAYLOAD) -> Iterator[bytes]:
    """RFC 6184 mode 1 payloads of one picture: a NAL unit each, or FU-A fragments of one."""
    for nal in nals:
        if len(nal) <= max_payload:
            yield nal
            continue
        indicator = (nal[0] & 0xE0) | 28  # FU-A, with the NAL's F and NRI bits
        kind = nal[0] & 0x1F
        body = nal[1:]
        step = max_payload - 2
        for offset in range(0, len(body), step):
            first, last = offset == 0, offset + step >= len(body)
            header = (0x80 if first else 0) | (0x40 if last else 0) | kind
            yield bytes((indicator, header)) + body[offset : offset + step]


def rtp_clock(wall_ns: int) -> int:
    """The 90 kHz RTP timestamp of a capture time (wraps at 2³²)."""
    return (wall_ns * 9 // 100_000) & 0xFFFFFFFF


@dataclass
class _Request:
    method: str
    url: str
    headers: dict[str, str]

    @property
    def cseq(self) -> str:
        return self.headers.get("cseq", "0")

    def token(self) -> str | None:
        """The token in the URL (``?token=``) or the password of Basic authentication."""
        found = parse_qs(urlsplit(self.url).query).get("token")
        if found:
            return found[0]
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                _, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return password or None
        return None


class _Transport(Protocol):
    def send(self, packet: bytes) -> None: ...


class _Interleaved:
    """RTP on the RTSP connection itself: ``$``, the channel, the length, the packet."""

    def __init__(self, conn: socket.socket, channel: int, lock: threading.Lock) -> None:
        self.conn, self.channel, self.lock = conn, channel, lock

    def send(self, packet: bytes) -> None:
        with self.lock:  # the connection's replies and packets must not interleave
            self.conn.sendall(struct.pack("!cBH", b"$", self.channel, len(packet)) + packet)


class _Udp:
    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock, self.address = sock, address

    def send(self, packet: bytes) -> None:
        self.sock.sendto(packet, self.address)


@dataclass
class _Session:
    id: str
    admission: Admission
    transport: _Transport
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    seq: int = field(default_factory=lambda: secrets.randbits(16))
    pictures: queue.Queue[tuple[list[bytes], bool, int] | None] = field(
        default_factory=lambda: queue.Queue(QUEUE_PICTURES)
    )
    playing: bool = False
    needs_key: bool = True
    lost: int = 0  # pictures this client was too slow for
    sent: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    ended: threading.Event = field(default_factory=threading.Event)

    def packets(self, payloads: list[bytes], clock: int) -> Iterator[bytes]:
        """One picture's RTP packets: this client's header on each payload."""
        for k, payload in enumerate(payloads):
            marker = 0x80 if k == len(payloads) - 1 else 0
            header = struct.pack("!BBHII", 0x80, marker | PT_H264, self.seq, clock, self.ssrc)
            self.seq = (self.seq + 1) & 0xFFFF
            yield header + payload


@dataclass
class _Client:
    """One RTSP connection: who it let in and the stream it set up."""

    conn: socket.socket
    address: tuple[str, int]
    lock: threading.Lock = field(default_factory=threading.Lock)  # replies vs. RTP packets
    admission: Admission | None = None
    session: _Session | None = None


class RtspServer:
    """Serves one H.264 stream on ``host:port`` at ``rtsp://…/<name>`` (module docstring).
    ``on_join`` is called when a client starts playing (the encoder's next picture should be
    a key frame)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str,
        gate: Gate,
        fps: float,
        on_join: Callable[[], None],
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.name = name
        self.fps = fps
        self._gate = gate
        self._on_join = on_join
        self._max = max_sessions
        self._sessions: dict[str, _Session] = {}
        self._connections = 0
        self._last_key = 0.0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sprop: str | None = None  # SPS,PPS in base64 (the SDP's), once an IDR went out
        self._profile = "42e01f"
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.settimeout(0.5)
        self.port = int(self.listener.getsockname()[1])
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((host if host not in ("", "::") else "0.0.0.0", 0))
        self._udp_port = int(self._udp.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, name=f"rtsp {name}", daemon=True)
        self._thread.start()

    # --- the stream ---------------------------------------------------------------------------

    def playing(self) -> int:
        """Clients playing now."""
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.playing)

    def sessions(self) -> list[dict[str, object]]:
        with self._lock:
            return [
                {"who": s.admission.who, "sent": s.sent, "lost": s.lost}
                for s in self._sessions.values()
                if s.playing
            ]

    def send(self, annexb: bytes, key: bool, wall_ns: int) -> None:
        """One encoded picture (Annex B) to every playing client; never waits on one. It is cut
        into RTP payloads once; each client adds only its own headers."""
        with self._lock:
            playing = [s for s in self._sessions.values() if s.playing]
        if not playing:
            return
        nals = list(nal_units(annexb))
        if key:
            self._learn_parameter_sets(nals)
        payloads = list(rtp_payloads(nals))
        clock = rtp_clock(wall_ns)
        for session in playing:
            try:
                session.pictures.put_nowait((payloads, key, clock))
            except queue.Full:
                session.lost += 1
                session.needs_key = True
                self._ask_key()

    def _ask_key(self) -> None:
        """A key frame for a client joining or resuming, at most every KEY_EVERY_S (a client
        joining over and over must not turn the stream into key frames)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_key < KEY_EVERY_S:
                return
            self._last_key = now
        self._on_join()

    def _learn_parameter_sets(self, nals: list[bytes]) -> None:
        sets = {nal[0] & 0x1F: nal for nal in nals if nal[0] & 0x1F in (7, 8)}
        if 7 in sets and 8 in sets:
            self._profile = sets[7][1:4].hex()
            self._sprop = ",".join(base64.b64encode(sets[k]).decode() for k in (7, 8))

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            self._end(session)
        self.listener.close()
        self._thread.join(timeout=2)
        self._udp.close()

    # --- connections --------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, address = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with self._lock:
                full = self._connections >= MAX_CONNECTIONS
                self._connections += 0 if full else 1
            if full:
                log.warning(
                    "rtsp %s: %d connections open: %s refused",
                    self.name,
                    MAX_CONNECTIONS,
                    address[0],
                )
                conn.close()
                continue
            threading.Thread(
                target=self._serve, args=(conn, address), name="rtsp client", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, address: tuple[str, int]) -> None:
        conn.settimeout(HEAD_S)
        client = _Client(conn, address)
        reader = conn.makefile("rb")
        try:
            while not self._closing.is_set():
                request = self._read(reader)
                if request is None:
                    return
                reply = self._handle(request, client)
                if client.admission is not None:
                    conn.settimeout(IDLE_S)
                with client.lock:
                    conn.sendall(reply)
                if request.method == "TEARDOWN":
                    return
        except (OSError, ValueError) as exc:
            log.debug("rtsp %s: %s", address[0], exc)
        finally:
            session = client.session
            if session is not None and isinstance(session.transport, _Interleaved):
                self._forget(session)  # its packets went over this connection
            reader.close()
            conn.close()
            with self._lock:
                self._connections -= 1

    @staticmethod
    def _read(stream: BinaryIO) -> _Request | None:
        """The next request, skipping interleaved RTCP the client sends ($ frames)."""
        while True:
            first = stream.read(1)
            if not first:
                return None
            if first == b"$":
                head = stream.read(3)
                if len(head) < 3:
                    return None
                stream.read(struct.unpack("!H", head[1:])[0])
                continue
            break
        lines = [first + stream.readline(MAX_REQUEST)]
        size = len(lines[0])
        while lines[-1] not in (b"\r\n", b"\n", b""):
            lines.append(stream.readline(MAX_REQUEST))
            size += len(lines[-1])
            if size > MAX_REQUEST:
                raise ValueError("request head too long")
        parts = lines[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("RTSP/"):
            raise ValueError(f"not an RTSP request: {lines[0][:80]!r}")
        headers = {}
        for raw in lines[1:]:
            key, sep, value = raw.decode("latin-1").partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length:
            if length > MAX_REQUEST:
                raise ValueError("request body too long")
            stream.read(length)
        return _Request(parts[0].upper(), parts[1], headers)

    def _handle(self, request: _Request, client: _Client) -> bytes:
        method = request.method
        session = client.session
        if session is not None:
            session.last_seen = time.monotonic()  # any request keeps it alive (UDP)
        if method == "OPTIONS":
            return _reply(request, 200, {"Public": METHODS})
        if method in ("DESCRIBE", "SETUP", "PLAY") and client.admission is None:
            token = request.token()
            if token is None:
                return _reply(request, 401, {"WWW-Authenticate": 'Basic realm="agecast"'})
            admitted = self._gate.admit(token)
            if isinstance(admitted, str):
                log.warning("rtsp %s refused from %s: %s", self.name, client.address[0], admitted)
                return _reply(request, 403, {}, admitted)
            client.admission = admitted
        if method == "DESCRIBE":
            return self._describe(request, client.conn)
        if method == "SETUP":
            return self._setup(request, client)
        if method == "PLAY":
            if session is None:
                return _reply(request, 455, {}, "SETUP first")
            return self._play(request, session)
        if method in ("GET_PARAMETER", "SET_PARAMETER"):
            return _reply(request, 200, {})
        if method == "TEARDOWN":
            if session is not None:
                self._forget(session)
            return _reply(request, 200, {})
        return _reply(request, 501, {"Public": METHODS})

    def _describe(self, request: _Request, conn: socket.socket) -> bytes:
        host = conn.getsockname()[0]
        fmtp = f"packetization-mode=1;profile-level-id={self._profile}"
        if self._sprop:
            fmtp += f";sprop-parameter-sets={self._sprop}"
        sdp = "\r\n".join(
            [
                "v=0",
                f"o=- {secrets.randbits(31)} 1 IN IP4 {host}",
                f"s=agecast {self.name}",
                "c=IN IP4 0.0.0.0",
                "t=0 0",
                "a=control:*",
                "a=range:npt=now-",
                f"m=video 0 RTP/AVP {PT_H264}",
                f"a=rtpmap:{PT_H264} H264/90000",
                f"a=fmtp:{PT_H264} {fmtp}",
                f"a=framerate:{self.fps:g}",
                "a=control:video",
                "",
            ]
        )
        base = request.url.split("?", 1)[0].rstrip("/") + "/"
        return _reply(request, 200, {"Content-Base": base, "Content-Type": "application/sdp"}, sdp)

    def _setup(self, request: _Request, client: _Client) -> bytes:
        assert client.admission is not None  # _handle lets no one set up before
        if client.session is not None:
            return _reply(request, 459, {}, "one stream per connection")
        spec = request.headers.get("transport", "")
        fields: dict[str, str] = {}
        for part in (p.strip() for p in spec.split(";")):
            key, _, value = part.partition("=")
            fields[key] = value
        transport: _Transport
        if spec.upper().startswith("RTP/AVP/TCP") and "interleaved" in fields:
            channel = int(fields["interleaved"].split("-")[0])
            transport = _Interleaved(client.conn, channel, client.lock)
            answer = f"RTP/AVP/TCP;unicast;interleaved={channel}-{channel + 1}"
        elif "client_port" in fields and "multicast" not in fields:
            rtp_port = int(fields["client_port"].split("-")[0])
            transport = _Udp(self._udp, (client.address[0], rtp_port))
            answer = (
                f"RTP/AVP;unicast;client_port={fields['client_port']};"
                f"server_port={self._udp_port}-{self._udp_port + 1}"
            )
        else:
            return _reply(request, 461, {}, "RTP over TCP (interleaved) or unicast UDP")
        with self._lock:
            if len(self._sessions) >= self._max:
                return _reply(request, 453, {}, f"{self._max} clients already")
            session = _Session(secrets.token_hex(8), client.admission, transport)
            self._sessions[session.id] = session
        client.session = session
        session_header = f"{session.id};timeout={int(IDLE_S)}"
        return _reply(request, 200, {"Transport": answer, "Session": session_header})

    def _play(self, request: _Request, session: _Session) -> bytes:
        if not session.playing:
            session.playing = True
            threading.Thread(
                target=self._write, args=(session,), name="rtsp writer", daemon=True
            ).start()
            log.info("rtsp %s: %s is watching", self.name, session.admission.who)
            self._ask_key()
        headers = {"Session": session.id, "Range": "npt=now-"}
        return _reply(request, 200, headers)

    def _write(self, session: _Session) -> None:
        """A playing client's own thread: its pictures out, its admission checked again."""
        checked = time.monotonic()
        try:
            while not session.ended.is_set():
                try:
                    item = session.pictures.get(timeout=0.5)
                except queue.Empty:
                    item = None
                now = time.monotonic()
                if now - checked >= RECHECK_S:
                    checked = now
                    if not session.admission.still_valid():
                        log.warning(
                            "rtsp %s: %s may no longer watch: stream ended",
                            self.name, session.admission.who,
                        )  # fmt: skip
                        break
                if isinstance(session.transport, _Udp) and now - session.last_seen > IDLE_S:
                    break  # a UDP client that stopped sending keep-alives
                if item is None:
                    continue
                payloads, key, clock = item
                if session.needs_key and not key:
                    continue  # a client starts (or resumes after a loss) at a key frame
                session.needs_key = False
                for packet in session.packets(payloads, clock):
                    session.transport.send(packet)
                session.sent += 1
        except OSError as exc:
            log.info("rtsp %s: %s went away (%s)", self.name, session.admission.who, exc)
        finally:
            self._forget(session)

    def _forget(self, session: _Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)
        self._end(session)

    @staticmethod
    def _end(session: _Session) -> None:
        session.playing = False
        session.ended.set()
        if isinstance(session.transport, _Interleaved):
            with contextlib.suppress(OSError):  # cut a refused client off at once
                session.transport.conn.shutdown(socket.SHUT_RDWR)


_STATUS = {
    200: "OK",
    401: "Unauthorized",
    403: "Forbidden",
    453: "Not Enough Bandwidth",
    455: "Method Not Valid in This State",
    459: "Aggregate Operation Not Allowed",
    461: "Unsupported Transport",
    501: "Not Implemented",
}


def _reply(request: _Request, status: int, headers: dict[str, str], body: str = "") -> bytes:
    lines = [f"RTSP/1.0 {status} {_STATUS[status]}", f"CSeq: {request.cseq}", "Server: agecast"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    data = body.encode()
    if data:
        if "Content-Type" not in headers:
            lines.append("Content-Type: text/plain")
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data
