//! Test helpers shared by every integration test.
#![allow(dead_code)]

pub mod admin;
pub mod dns;
pub mod http;
pub mod kong;
pub mod pg;
pub mod redis;
pub mod stream;
pub mod tls;
pub mod upstream;
