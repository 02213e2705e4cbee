//! No code: `tests/` checks ARCHITECTURE.md's invariants on the workspace's sources and manifests,
//! as rust-analyzer's tidy tests do, so that an invariant the code no longer keeps fails a test.
