//! A tiny authoritative DNS responder on UDP loopback for tests: A and SRV records set by the
//! test (changeable while it runs), NXDOMAIN for unknown names, NOERROR with no answer for a
//! known name asked another type; it counts the queries per name.
#![allow(dead_code)] // Not every test uses every helper.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::http::rt;

/// One record.
#[derive(Debug, Clone)]
pub enum Rec {
    /// An IPv4 address.
    A(Ipv4Addr, u32),
    /// priority, weight, port, target, ttl.
    Srv(u16, u16, u16, String, u32),
}

#[derive(Default)]
struct Zone {
    records: HashMap<String, Vec<Rec>>,
    queries: HashMap<String, u64>,
}

/// A running responder; stops when dropped.
pub struct DnsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    /// Starts a responder on a free UDP port of 127.0.0.1.
    pub fn start() -> DnsServer {
        let socket = rt()
            .block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))
            .expect("bind udp");
        let addr = socket.local_addr().expect("addr");
        let zone: Arc<Mutex<Zone>> = Arc::default();
        let z = zone.clone();
        let task = rt().spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&buf[..n], &z) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        DnsServer { addr, zone, task }
    }

    /// Replaces the records of `name`.
    pub fn set(&self, name: &str, records: Vec<Rec>) {
        self.zone
            .lock()
            .expect("zone")
            .records
            .insert(name.to_ascii_lowercase(), records);
    }

    /// Queries received for `name` so far (any type).
    pub fn queries(&self, name: &str) -> u64 {
        self.zone
            .lock()
            .expect("zone")
            .queries
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }
}

fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    Some((labels.join("."), at))
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn answer(query: &[u8], zone: &Mutex<Zone>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let (name, end) = read_name(query, 12)?;
    let qtype = u16::from_be_bytes([*query.get(end)?, *query.get(end + 1)?]);
    let question = query.get(12..end + 4)?;
    let mut zone = zone.lock().ok()?;
    *zone.queries.entry(name.clone()).or_default() += 1;
    let known = zone.records.get(&name).cloned();
    drop(zone);
    let answers: Vec<Rec> = known
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| match r {
            Rec::A(..) => qtype == 1,
            Rec::Srv(..) => qtype == 33,
        })
        .collect();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[0..2]);
    let rcode: u8 = if known.is_none() { 3 } else { 0 };
    // QR, opcode 0, AA, RD copied; RA; rcode.
    out.push(0x84 | (query[2] & 0x01));
    out.push(0x80 | rcode);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(question);
    for r in answers {
        out.extend_from_slice(&[0xC0, 0x0C]);
        let (rtype, ttl, rdata) = match r {
            Rec::A(ip, ttl) => (1u16, ttl, ip.octets().to_vec()),
            Rec::Srv(priority, weight, port, target, ttl) => {
                let mut d = Vec::new();
                d.extend_from_slice(&priority.to_be_bytes());
                d.extend_from_slice(&weight.to_be_bytes());
                d.extend_from_slice(&port.to_be_bytes());
                write_name(&mut d, &target);
                (33u16, ttl, d)
            }
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}
