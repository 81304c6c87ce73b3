//! Fuzzes the crawler's HTTP/1.x response reader (`probe::http::read_response`: status line,
//! headers, interim 1xx responses, Content-Length, chunked and close-delimited bodies) under
//! small limits: no panic, no body past `max_body`, and a reader handed one byte at a time
//! gets the same answer as one handed the whole input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::probe::http::{HttpConfig, read_response};
use tokio::io::BufReader;

fuzz_target!(|data: &[u8]| {
    let cfg = HttpConfig {
        max_head: 512,
        max_body: 4096,
        ..HttpConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let (whole, trickled) = runtime.block_on(async {
        let whole = read_response(&mut &data[..], &cfg).await;
        let trickled = read_response(&mut BufReader::with_capacity(1, data), &cfg).await;
        (whole, trickled)
    });
    if let Ok(response) = &whole {
        assert!(response.body.len() <= cfg.max_body);
    }
    assert_eq!(whole.ok(), trickled.ok());
});
