//! custodia's load generators and benchmarks, in their own crate (never published, never
//! part of a server build), run as `custodia-bench <load|log|safety|staff|disclosure|kek|rotation>`.
//!
//! Layout:
//! - `load` — the load generator on the SDK's protocol (`custodia-bench load`).
//! - `log` — the audit log's figures on a data directory of its own.
//! - `safety` — PDQ, PDQ matching and upload throughput.
//! - `staff` — the latency of an audited staff read, end to end.
//! - `disclosure` — building and verifying a disclosure package.
//! - `kek` — sealing and opening data keys under the keyring's KEK and a token's.
//! - `rotation` — the rewrap rate of a KEK rotation and the send latency meanwhile.
//! - `world` — the in-process deployment the staff benches start from.

pub mod disclosure;
pub mod kek;
pub mod load;
pub mod log;
pub mod rotation;
pub mod safety;
pub mod staff;
pub mod world;
