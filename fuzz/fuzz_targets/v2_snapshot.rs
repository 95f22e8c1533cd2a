//! Fuzzes `replica::fuzzing::v2_snapshot` (its doc says what the input is and which
//! properties are checked). A violated property aborts the run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = replica::fuzzing::v2_snapshot(data) {
        panic!("property violated: {}", v.0);
    }
});
