"""edgeavs TVM kernels and schedules (TVMScript / TIR written for edgeavs)."""
