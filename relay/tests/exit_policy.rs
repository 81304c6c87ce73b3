//! An exit policy written in YAML, with an IPv6 rule and a port range, decides real BEGINs.

mod support;

use onionlab_proto::relay_msg::{EndReason, RelayMsg};
use onionlab_relay::RelayConfig;
use std::net::SocketAddr;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_rule_and_port_range_from_yaml_decide_begins() {
    let echo = echo_server_on("[::1]:0").await;
    let port = echo.port();
    let (lo, hi) = (port.saturating_sub(5).max(1), port.saturating_add(5));
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
nickname: v6exit
or_listen: 127.0.0.1:0
data_dir: {}
exit: true
exit_policy_reject_private: false
exit_policy:
  - "accept [::1]/128:{lo}-{hi}"
  - "reject *:*"
system_resolver: false
authorities: []
"#,
        dir.path().display()
    );
    let config: RelayConfig = onionlab_link::config::parse(&yaml, "v6exit.yaml").unwrap();
    let relay = start(config).await;
    let mut client = RawClient::connect(&relay, "127.0.0.1").await;
    let mut circ = client.create(0x8000_0001, &relay.relay.onion_public()).await.unwrap();

    assert!(
        matches!(client.begin(&mut circ, 1, echo).await, RelayMsg::Connected(_)),
        "inside the IPv6 rule and its port range"
    );
    client.send_msg(&mut circ, 1, RelayMsg::Data(b"v6".to_vec())).await;
    assert_eq!(
        client.recv_msg(&mut circ).await.unwrap().msg,
        RelayMsg::Data(b"v6".to_vec())
    );

    let outside_range = SocketAddr::new(echo.ip(), hi + 1);
    let over_ipv4 = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    for (stream, target) in [(2, outside_range), (3, over_ipv4)] {
        assert_eq!(
            client.begin(&mut circ, stream, target).await,
            RelayMsg::End(EndReason::ExitPolicy),
            "{target}"
        );
    }
}
