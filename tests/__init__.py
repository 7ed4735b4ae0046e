
import os as _os

# `edgeavs segment --artifact` switches its process to TVM's runtime library alone
# (edgeavs.compiler.artifact.use_runtime_only) when TVM is not imported yet; under CliRunner that
# process is the test process, which later compiles. "0" keeps the whole library here; tests of
# the runtime-only path run children with the variable removed.
_os.environ.setdefault("TVM_USE_RUNTIME_LIB", "0")
