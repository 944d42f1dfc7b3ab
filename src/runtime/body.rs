//! The body of a request as a [`Handler`](super::listener::Handler) receives it: read whole
//! with its head by the gateway's own HTTP/1.1 loop, or streamed by hyper.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A request body.
#[derive(Debug)]
pub enum RequestBody {
    /// No body, or one already taken.
    Empty,
    /// A body that arrived whole with its head.
    Whole(Bytes),
    /// A body hyper streams as it arrives.
    Streamed(Incoming),
}

impl RequestBody {
    /// The body that arrived whole with its head: `bytes`, or [`RequestBody::Empty`] when there
    /// are none.
    pub fn whole(bytes: Bytes) -> RequestBody {
        match bytes.is_empty() {
            true => RequestBody::Empty,
            false => RequestBody::Whole(bytes),
        }
    }

    /// The whole body, when it is already here (no read needed).
    pub fn ready(&self) -> Option<Bytes> {
        match self {
            RequestBody::Empty => Some(Bytes::new()),
            RequestBody::Whole(bytes) => Some(bytes.clone()),
            RequestBody::Streamed(_) => None,
        }
    }
}

impl From<Incoming> for RequestBody {
    fn from(body: Incoming) -> RequestBody {
        RequestBody::Streamed(body)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match this {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Whole(_) => match std::mem::replace(this, RequestBody::Empty) {
                RequestBody::Whole(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                _ => Poll::Ready(None),
            },
            RequestBody::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Whole(_) => false,
            RequestBody::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Whole(bytes) => SizeHint::with_exact(bytes.len() as u64),
            RequestBody::Streamed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_whole_body_is_one_frame_then_the_end() {
        let mut body = RequestBody::whole(Bytes::from_static(b"abc"));
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(!body.is_end_stream());
        let frame = body.frame().await.expect("a frame").expect("no error");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"abc")));
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }

    #[test]
    fn no_bytes_make_an_empty_body() {
        let body = RequestBody::whole(Bytes::new());
        assert!(body.is_end_stream());
        assert_eq!(body.ready(), Some(Bytes::new()));
    }
}
