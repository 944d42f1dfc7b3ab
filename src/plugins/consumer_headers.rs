//! The upstream header values of a consumer (`X-Consumer-ID`, `X-Consumer-Custom-ID`,
//! `X-Consumer-Username`), made the first time the consumer authenticates on a worker thread
//! and reused for its later requests there: no allocation, no lock, no validation per request.
//!
//! The memo is per thread and keyed by the consumer document's address; it holds the document
//! itself, so that address cannot be reused by another consumer while the entry lives. A
//! consumer changed by the Admin API is a new document in the next snapshot, hence a new
//! entry; entries of documents no snapshot uses any more are dropped when the memo fills up.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use foldhash::fast::FixedState;
use http::HeaderValue;
use serde_json::Value;

use crate::store::schema::Doc;

/// Consumers a thread remembers before it starts over.
const CAPACITY: usize = 4096;

/// A consumer's header values; `None` where the consumer has no such field (or one that
/// cannot be a header value), so the header is removed.
#[derive(Debug)]
pub struct ConsumerHeaders {
    /// `X-Consumer-ID`.
    pub id: Option<HeaderValue>,
    /// `X-Consumer-Custom-ID`.
    pub custom_id: Option<HeaderValue>,
    /// `X-Consumer-Username`.
    pub username: Option<HeaderValue>,
}

impl ConsumerHeaders {
    fn of(consumer: &Doc) -> ConsumerHeaders {
        let value = |name: &str| {
            let text = consumer.get(name).and_then(Value::as_str)?;
            let value =
                HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(text.as_bytes()))
                    .ok()?;
            // Cloned once here so that later clones only count references.
            let _ = value.clone();
            Some(value)
        };
        ConsumerHeaders {
            id: value("id"),
            custom_id: value("custom_id"),
            username: value("username"),
        }
    }
}

type Memo = HashMap<usize, (Arc<Doc>, Rc<ConsumerHeaders>), FixedState>;

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// `consumer`'s header values, from this thread's memo or made now.
pub fn of(consumer: &Arc<Doc>) -> Rc<ConsumerHeaders> {
    let key = Arc::as_ptr(consumer) as usize;
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some((_, headers)) = memo.get(&key) {
            return headers.clone();
        }
        if memo.len() >= CAPACITY {
            memo.clear();
        }
        let headers = Rc::new(ConsumerHeaders::of(consumer));
        memo.insert(key, (consumer.clone(), headers.clone()));
        headers
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consumer(v: Value) -> Arc<Doc> {
        match v {
            Value::Object(m) => Arc::new(m),
            _ => unreachable!("object literal"),
        }
    }

    #[test]
    fn values_follow_the_document_and_are_reused() {
        let a = consumer(json!({"id": "c-1", "username": "alice"}));
        let first = of(&a);
        assert_eq!(
            first.id.as_ref().map(HeaderValue::as_bytes),
            Some(&b"c-1"[..])
        );
        assert_eq!(
            first.username.as_ref().map(HeaderValue::as_bytes),
            Some(&b"alice"[..])
        );
        assert!(first.custom_id.is_none());
        assert!(Rc::ptr_eq(&first, &of(&a)), "made once per consumer");

        // The same consumer changed is another document: its own values.
        let changed = consumer(json!({"id": "c-1", "username": "alice2", "custom_id": "x"}));
        let second = of(&changed);
        assert_eq!(
            second.username.as_ref().map(HeaderValue::as_bytes),
            Some(&b"alice2"[..])
        );
        assert_eq!(
            second.custom_id.as_ref().map(HeaderValue::as_bytes),
            Some(&b"x"[..])
        );
    }

    #[test]
    fn a_value_that_cannot_be_a_header_is_left_out() {
        let c = consumer(json!({"id": "c-2", "username": "bad\nname"}));
        assert!(of(&c).username.is_none());
    }

    #[test]
    fn a_full_memo_starts_over() {
        let kept: Vec<Arc<Doc>> = (0..CAPACITY + 1)
            .map(|i| consumer(json!({"id": format!("c-{i}")})))
            .collect();
        for c in &kept {
            of(c);
        }
        MEMO.with(|m| assert!(m.borrow().len() <= CAPACITY));
        let last = kept.last().map(of).and_then(|h| h.id.clone());
        assert_eq!(last, HeaderValue::from_str(&format!("c-{CAPACITY}")).ok());
    }
}
