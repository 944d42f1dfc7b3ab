//! What authenticating puts on a request, made the first time a consumer (or credential)
//! authenticates on a worker thread and reused for its later requests there: no allocation, no
//! lock, no validation per request.
//!
//! - A consumer's upstream header values (`X-Consumer-ID`, `X-Consumer-Custom-ID`,
//!   `X-Consumer-Username`): [`consumer_headers`].
//! - A credential's [`Credential`] record, with its `X-Credential-Identifier` value:
//!   [`credential`].
//! - What a secret key (key-auth's) authenticates as in the current snapshot: [`by_key`],
//!   which spares the search of the snapshot's credentials and consumers.
//!
//! Each memo is per thread. The first two are keyed by the document's address and hold the
//! document itself, so that address cannot be reused by another entity while the entry lives.
//! An entity changed by the Admin API is a new document in the next snapshot, hence a new
//! entry; entries of documents no snapshot uses any more are dropped when the memo fills up.
//! The keys' memo belongs to one snapshot (held weakly) and starts over with the next one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use foldhash::fast::FixedState;
use http::HeaderValue;
use serde_json::Value;

use super::ctx::Credential;
use crate::snapshot::Snapshot;
use crate::store::schema::Doc;

/// Consumers (and, apart, credentials) a thread remembers before it starts over.
const CAPACITY: usize = 4096;

/// A consumer's header values; `None` where the consumer has no such field (or one that
/// cannot be a header value), so the header is removed.
#[derive(Debug)]
pub struct ConsumerHeaders {
    /// The consumer's id, as text.
    pub id_text: Option<Arc<str>>,
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
            id_text: consumer.get("id").and_then(Value::as_str).map(Arc::from),
            id: value("id"),
            custom_id: value("custom_id"),
            username: value("username"),
        }
    }
}

/// Entries by document address, each holding its document.
type Memo<T> = HashMap<usize, (Arc<Doc>, T), FixedState>;

/// What a credential authenticates as: its consumer and its record.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The consumer owning the credential.
    pub consumer: Arc<Doc>,
    /// The credential's record.
    pub credential: Credential,
}

/// Keys found in one snapshot (held weakly: an old snapshot is not kept alive, and its
/// address is not reused while this is held).
#[derive(Default)]
struct Keys {
    snapshot: Weak<Snapshot>,
    found: HashMap<Box<str>, Authenticated, FixedState>,
}

thread_local! {
    static MEMO: RefCell<Memo<Rc<ConsumerHeaders>>> = RefCell::new(Memo::default());
    static CREDENTIALS: RefCell<Memo<Credential>> = RefCell::new(Memo::default());
    static KEYS: RefCell<Keys> = RefCell::new(Keys::default());
}

/// The entry of `doc` in `memo`, made by `make` when missing.
fn remembered<T: Clone>(memo: &RefCell<Memo<T>>, doc: &Arc<Doc>, make: impl FnOnce() -> T) -> T {
    let key = Arc::as_ptr(doc) as usize;
    let mut memo = memo.borrow_mut();
    if let Some((_, entry)) = memo.get(&key) {
        return entry.clone();
    }
    if memo.len() >= CAPACITY {
        memo.clear();
    }
    let entry = make();
    memo.insert(key, (doc.clone(), entry.clone()));
    entry
}

/// `consumer`'s header values, from this thread's memo or made now.
pub fn consumer_headers(consumer: &Arc<Doc>) -> Rc<ConsumerHeaders> {
    MEMO.with(|memo| remembered(memo, consumer, || Rc::new(ConsumerHeaders::of(consumer))))
}

/// The [`Credential`] record of the credential `doc`, identified upstream by `identifier`
/// (which each auth plugin derives from the document alone), from this thread's memo or made
/// now. A remembered record with another identifier is not used.
pub fn credential(doc: &Arc<Doc>, identifier: &str) -> Credential {
    let known = CREDENTIALS.with(|memo| remembered(memo, doc, || Credential::new(doc, identifier)));
    match &*known.identifier == identifier {
        true => known,
        false => Credential::new(doc, identifier),
    }
}

/// What `key` authenticates as in `snapshot`: from this thread's memo, or found now by `find`
/// (and remembered when found; failures are not). The memo starts over with every new
/// snapshot, so a changed or deleted credential is never served from it.
pub fn by_key<E>(
    snapshot: &Arc<Snapshot>,
    key: &str,
    find: impl FnOnce() -> Result<Authenticated, E>,
) -> Result<Authenticated, E> {
    let known = KEYS.with(|memo| {
        let memo = memo.borrow();
        match std::ptr::eq(memo.snapshot.as_ptr(), Arc::as_ptr(snapshot)) {
            true => memo.found.get(key).cloned(),
            false => None,
        }
    });
    if let Some(known) = known {
        return Ok(known);
    }
    let found = find()?;
    KEYS.with(|memo| {
        let mut memo = memo.borrow_mut();
        if !std::ptr::eq(memo.snapshot.as_ptr(), Arc::as_ptr(snapshot)) {
            memo.snapshot = Arc::downgrade(snapshot);
            memo.found.clear();
        }
        if memo.found.len() >= CAPACITY {
            memo.found.clear();
        }
        memo.found.insert(key.into(), found.clone());
    });
    Ok(found)
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
        let first = consumer_headers(&a);
        assert_eq!(
            first.id.as_ref().map(HeaderValue::as_bytes),
            Some(&b"c-1"[..])
        );
        assert_eq!(
            first.username.as_ref().map(HeaderValue::as_bytes),
            Some(&b"alice"[..])
        );
        assert!(first.custom_id.is_none());
        assert!(
            Rc::ptr_eq(&first, &consumer_headers(&a)),
            "made once per consumer"
        );

        // The same consumer changed is another document: its own values.
        let changed = consumer(json!({"id": "c-1", "username": "alice2", "custom_id": "x"}));
        let second = consumer_headers(&changed);
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
        assert!(consumer_headers(&c).username.is_none());
    }

    #[test]
    fn a_full_memo_starts_over() {
        let kept: Vec<Arc<Doc>> = (0..CAPACITY + 1)
            .map(|i| consumer(json!({"id": format!("c-{i}")})))
            .collect();
        for c in &kept {
            consumer_headers(c);
        }
        MEMO.with(|m| assert!(m.borrow().len() <= CAPACITY));
        let last = kept.last().map(consumer_headers).and_then(|h| h.id.clone());
        assert_eq!(last, HeaderValue::from_str(&format!("c-{CAPACITY}")).ok());
    }

    #[test]
    fn a_credential_record_is_made_once_per_document() {
        let doc = consumer(json!({"id": "k-1", "consumer": {"id": "c-1"}}));
        let first = credential(&doc, "k-1");
        assert_eq!(&*first.id, "k-1");
        assert_eq!(first.consumer_id.as_deref(), Some("c-1"));
        assert_eq!(
            first.identifier_value.as_ref().map(HeaderValue::as_bytes),
            Some(&b"k-1"[..])
        );
        assert!(Arc::ptr_eq(&first.id, &credential(&doc, "k-1").id));
        let renamed = credential(&doc, "other");
        assert_eq!(
            &*renamed.identifier, "other",
            "never another identifier's record"
        );
        let other = consumer(json!({"id": "k-2"}));
        assert_eq!(&*credential(&other, "k-2").id, "k-2");
        assert!(credential(&other, "k-2").consumer_id.is_none());
    }

    #[test]
    fn a_key_is_found_once_per_snapshot() {
        let found = |username: &str| Authenticated {
            consumer: consumer(json!({"id": "c-1", "username": username})),
            credential: credential(&consumer(json!({"id": "k-9"})), "k-9"),
        };
        let first = Arc::new(Snapshot::empty());
        let mut searched = 0;
        for _ in 0..3 {
            let hit = by_key::<()>(&first, "secret", || {
                searched += 1;
                Ok(found("alice"))
            });
            let name = hit.ok().and_then(|a| a.consumer.get("username").cloned());
            assert_eq!(name, Some(json!("alice")));
        }
        assert_eq!(searched, 1, "searched once, then remembered");

        // A failure is not remembered: the next request searches again.
        assert!(by_key(&first, "wrong", || Err("no such key")).is_err());
        assert!(by_key::<()>(&first, "wrong", || Ok(found("late"))).is_ok());

        // A new snapshot (a credential changed or deleted) starts over.
        let second = Arc::new(Snapshot::empty());
        let hit = by_key::<()>(&second, "secret", || Ok(found("bob")));
        let name = hit.ok().and_then(|a| a.consumer.get("username").cloned());
        assert_eq!(name, Some(json!("bob")));
        assert!(by_key(&second, "wrong", || Err("gone")).is_err());
    }
}
