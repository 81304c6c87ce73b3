//! Writes small, valid seed inputs for every fuzz target into `seeds/<target>/`, so that the
//! fuzzer starts from real requests instead of discovering the formats byte by byte.
//!
//! Run from `client/fuzz` with `cargo run --example gen_seeds` (stable is enough).

use onionlab_client::http_connect::encode_connect;
use onionlab_client::socks_codec::{Address, Command, Reply, Request, encode_reply, encode_request};
use onionlab_proto::relay_msg::{Target, TargetHost};
use std::error::Error;
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    let dir = Path::new("seeds").join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let requests = [
        (
            "connect_name",
            Command::Connect,
            Address::Name(b"demo.onionlab.test".to_vec()),
            80,
        ),
        ("connect_v4", Command::Connect, Address::Ip("127.0.0.1".parse()?), 8000),
        ("connect_v6", Command::Connect, Address::Ip("::1".parse()?), 443),
        (
            "resolve_name",
            Command::Resolve,
            Address::Name(b"example.org".to_vec()),
            0,
        ),
    ];
    for (name, command, address, port) in requests {
        let bytes = encode_request(&Request { command, address, port }).ok_or("name too long")?;
        write("socks_request", name, &bytes)?;
    }
    write(
        "socks_request",
        "reply_resolved",
        &encode_reply(Reply::Succeeded, "10.1.2.3:0".parse()?),
    )?;
    write("socks_request", "bind", &[5, 2, 0, 1, 0, 0, 0, 0, 0, 0])?;
    let targets = [
        ("name", TargetHost::Name("demo.onionlab.test".into()), 8000),
        ("v4", TargetHost::Ip("127.0.0.1".parse()?), 443),
        ("v6", TargetHost::Ip("::1".parse()?), 80),
    ];
    for (name, host, port) in targets {
        write("http_connect", name, &encode_connect(&Target { host, port }))?;
    }
    write(
        "http_connect",
        "curl",
        b"CONNECT demo.onionlab.test:8000 HTTP/1.1\r\nHost: demo.onionlab.test:8000\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n",
    )?;
    write(
        "http_connect",
        "get",
        b"GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n",
    )?;
    Ok(())
}
