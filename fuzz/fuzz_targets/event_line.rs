#![no_main]
// The event-log parser: one line, as the follower and the dashboard read it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = circuitscope::runlog::Envelope::parse(&line);
    let _ = circuitscope::tui::Record::parse(&line, 0);
});
