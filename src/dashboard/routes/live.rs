//! The live view: the page, `GET /api/live`, and `GET /api/events`, the
//! event stream that sends the snapshot again on every change.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Frame;
use tokio::sync::mpsc;

use super::*;
use crate::dashboard::live::{LiveData, POLL_EVERY};
use crate::web::t;

/// An idle event stream gets a comment this often (keeps proxies and the
/// browser from timing it out, and notices a gone client).
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /`.
pub(super) fn page(cx: &Cx, m: &Manager) -> Resp {
    let (d, lang) = (cx.d, cx.lang);
    let (p, _) = d.live.fresh(&d.app.presence, POLL_EVERY);
    let body = views::live_body(lang, &p.data, p.seq);
    html(
        StatusCode::OK,
        views::page(
            lang,
            &d.store_name,
            &t(lang, "dash_live"),
            &m.session.csrf,
            &body,
            true,
        ),
    )
}

/// `GET /api/live`.
pub(super) fn current(cx: &Cx) -> Resp {
    let d = cx.d;
    d.live.refresh(&d.app.presence);
    let p = d.live.current();
    json(
        StatusCode::OK,
        &serde_json::json!({"seq": p.seq, "live": p.data}),
    )
}

/// `GET /api/events`: the live snapshot now and after every change.
pub(super) fn events(cx: &Cx, m: &Manager) -> Resp {
    let (d, lang, session_id) = (cx.d, cx.lang, m.id.clone());
    let Ok(permit) = d.live.streams.clone().try_acquire_owned() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live views open; close one",
        );
    };
    // The poller skips its work while no stream is open: the first
    // snapshot may be old.
    d.live.fresh(&d.app.presence, POLL_EVERY);
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mut updates = d.live.subscribe();
    let shutdown = d.shutdown.clone();
    let auth_check = d.session_checker();
    tokio::spawn(async move {
        let _permit = permit;
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = tokio::time::timeout(SSE_KEEPALIVE, updates.changed()) => match changed {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            if !auth_check(&session_id) || tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    },
                }
            }
            first = false;
            if !auth_check(&session_id) {
                return;
            }
            let p = updates.borrow_and_update().clone();
            let msg = sse_message(lang, p.seq, &p.data);
            if tx.send(Bytes::from(msg)).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(BoxBody::new(EventStream(rx)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// One `snapshot` event: the numbers and the rendered `#live` section.
pub fn sse_message(lang: Language, seq: u64, data: &LiveData) -> String {
    let payload = serde_json::json!({
        "seq": seq,
        "present_now": data.present_now,
        "html": views::live_section(lang, data),
    });
    format!("id: {seq}\nevent: snapshot\ndata: {payload}\n\n")
}

/// A response body fed from a channel (the event stream).
struct EventStream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
