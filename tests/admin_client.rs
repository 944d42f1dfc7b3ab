//! The kong-commands Admin API client against a real node.

use kong_commands::{AdminClient, ClientError};

use crate::support::http::rt;
use crate::support::kong::Kong;

#[test]
fn client_reads_info_and_status() {
    let k = Kong::start("");
    let client = AdminClient::new(&k.admin("")).expect("client");
    let info = rt().block_on(client.info()).expect("GET /");
    assert_eq!(info.version, "3.10.0");
    assert_eq!(info.pids.master as i32, k.pid().expect("pid"));
    let status = rt().block_on(client.status()).expect("GET /status");
    assert_eq!(status.database.map(|d| d.reachable), Some(true));
    assert!(status.server.total_requests >= 1);
}

#[test]
fn client_errors_say_what_failed() {
    assert!(matches!(
        AdminClient::new("localhost:8001"),
        Err(ClientError::Url { .. })
    ));
    let port = crate::support::kong::free_port();
    let client = AdminClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let err = rt().block_on(client.info()).expect_err("nothing listens");
    assert!(
        err.to_string().starts_with(&format!(
            "could not reach the Admin API at http://127.0.0.1:{port}/"
        )),
        "{err}"
    );
}
