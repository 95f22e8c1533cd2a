//! Fuzzes `replica::fuzzing::wal_segments` (its doc says what the input is and which
//! properties are checked). A violated property aborts the run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = replica::fuzzing::wal_segments(data) {
        panic!("property violated: {}", v.0);
    }
});
