#![no_main]
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: smux_fuzz::CountingAlloc = smux_fuzz::CountingAlloc;

fuzz_target!(|data: &[u8]| smux_fuzz::frame_decode(data));
