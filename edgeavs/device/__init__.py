"""Running compiled artifacts on AArch64 devices: a real phone or board over TVM RPC, or an
emulated one (qemu user mode) on this machine.

- :mod:`edgeavs.device.emulator`: ``setup_emulator`` (host tools + guest in the cache) and
  :class:`~edgeavs.device.emulator.EmulatedDevice` (the RPC server under qemu, started/stopped).
- :mod:`edgeavs.device.rpc_server`: the in-process RPC server the guest runs (stdlib + TVM
  runtime only; also usable on a Linux AArch64 board; loopback only unless ``--allow-remote``).
- :mod:`edgeavs.device.remote`: connect (``--rpc``/``--rpc-tracker``/emulated), upload, run.
- :mod:`edgeavs.device.net`: ``check_listen_host``: no RPC server on a non-loopback address
  without ``--allow-remote``.
- :mod:`edgeavs.device.process`: children that do not outlive edgeavs (SIGTERM/SIGHUP as
  Ctrl-C, ``PR_SET_PDEATHSIG``).
- :mod:`edgeavs.device.llvm_check`: LLVM knows a target's CPU and every feature
  (``edgeavs.targets.load_checked_target`` applies it to a loaded target).
- :mod:`edgeavs.device.export`: link the compiled code for each consumer (phone, Linux).

Importing this package is cheap: no TVM, no torch.
"""
