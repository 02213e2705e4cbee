//! ser-core: the few definitions more than one stage needs, each written once. It depends on no
//! stage and on no candle, so every stage may use it (ser-eval included).
//!
//! - [`io`]: writing a file atomically ([`io::AtomicFile`], [`io::write_atomic`]) and hashing
//!   one ([`io::sha256_file`]);
//! - [`predictions`]: the column names of `predictions.parquet`, which ser-model writes and
//!   ser-eval reads;
//! - [`scores`]: accuracy, unweighted average recall and F1 with scikit-learn's definitions, which
//!   training watches on its validation part and ser-eval reports.

pub mod io;
pub mod predictions;
pub mod scores;
