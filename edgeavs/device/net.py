"""Where an RPC server may listen: loopback only, unless the user says otherwise.

:func:`check_listen_host` is shared by every edgeavs command that starts a TVM RPC server
(the emulated device, ``edgeavs device serve``); :mod:`edgeavs.device.remote` (connecting) and
:mod:`edgeavs.device.emulator` (serving) both sit above it, so neither imports the other for it.
"""

from __future__ import annotations

from edgeavs.errors import EdgeAVSError


def check_listen_host(host: str, allow_remote: bool = False, option: str = "--host",
                      flag: str = "--allow-remote", port: int | None = None) -> str | None:
    """Refuse to serve TVM RPC on an address that is not loopback unless ``allow_remote``.

    TVM's RPC protocol loads and runs whatever library a client uploads, with no
    authentication. Loopback is 127.0.0.0/8, ::1 and names that resolve only to those
    (``localhost``); ``0.0.0.0``, ``""`` and every other address are not. Returns ``None`` for
    loopback, else (with ``allow_remote``) the one-line warning to print; raises a one-line
    :class:`EdgeAVSError` naming ``option`` without it, or when the name does not resolve."""
    from edgeavs.device.rpc_server import REMOTE_WARNING, is_loopback_host

    try:
        loopback = is_loopback_host(host)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise EdgeAVSError(f"{option} {host!r}: cannot resolve the address ({reason})") from None
    if loopback:
        return None
    if not allow_remote:
        raise EdgeAVSError(f"{option} {host!r} is not a loopback address and TVM RPC runs any "
                           f"library a client uploads, unauthenticated: pass {flag} to listen "
                           "there anyway")
    where = f"{host}:{port}" if port else f"{host} (the RPC port)"
    return "warning: " + REMOTE_WARNING.format(address=where)
