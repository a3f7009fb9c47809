//! Arbitrary bytes into the client-side decoders, the way the gateway feeds them: a startup
//! packet, then a stream of messages, each also decoded with its body helpers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1 << 16;
    let mut rest = data;
    // The whole input as a startup packet, then as a message stream after it.
    if let Ok(Some((_, used))) = latch_pgwire::decode_startup(rest, max) {
        rest = rest.get(used..).unwrap_or_default();
    }
    while let Ok(Some((msg, used))) = latch_pgwire::decode_frontend(rest, max) {
        if let latch_pgwire::FrontendMessage::AuthResponse(body) = msg {
            let _ = latch_pgwire::frontend::password(body);
            let _ = latch_pgwire::frontend::sasl_initial_response(body);
        }
        let mut out = Vec::new();
        msg.encode(&mut out);
        rest = rest.get(used..).unwrap_or_default();
    }
    let _ = latch_pgwire::decode_backend(data, max);
});
