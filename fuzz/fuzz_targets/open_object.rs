//! Fuzz target: parse a header and open arbitrary bytes with a fixed KEK; nothing may panic,
//! and nothing but the true plaintext may ever come out.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    eugate_fuzz::open_object(data);
});
