//! Arbitrary bytes through every parser of user input in the replayer:
//! `--fail-if` goals, the stages file, the noise file, JSON path patterns,
//! mock results lines, and the comparison of response bodies. None may
//! panic, and what parses must behave (see `tapwire_replay::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tapwire_replay::fuzzing::parsers(data);
});
