//! The demo HQ's page and JSON, and the wiring: a signed batch posted to
//! the in-process HQ turns a consenting member's arrival into a message.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use super::*;
use crate::uplink::signing::SigningKey;

const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
/// 2026-12-01 (a Tuesday) 04:00 UTC: 12:00 in Shanghai.
const NOON: i64 = 1_796_097_600_000;

fn demo_hq(campaigns: Vec<Campaign>) -> Arc<DemoHq> {
    let tz = crate::time::timezone_by_name("Asia/Shanghai").unwrap();
    DemoHq::new(campaigns, tz, Arc::new(|| Timestamp(NOON)))
}

fn event(id: &str, ty: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/stores/demo-01",
           "type": format!("com.storegate.{ty}"), "time": Timestamp(NOON).rfc3339(),
           "sequence": "1", "datacontenttype": "application/json", "data": data})
}

fn linked(member: &str) -> Value {
    event(
        &format!("l-{member}"),
        "member.linked",
        json!({"member_id": member, "device_id": "d", "staff_code": null, "marketing": true}),
    )
}

fn visit(id: &str, member: &str) -> Value {
    event(
        id,
        "visit.started",
        json!({"visit_id": "v", "device_id": "d", "member_id": member}),
    )
}

async fn get(hq: &DemoHq, receiver: &Arc<Receiver>, path: &str) -> (StatusCode, String, String) {
    let req = Request::get(path).body(Full::new(Bytes::new())).unwrap();
    let resp = answer(receiver, hq, req).await;
    let ty = resp.headers()["content-type"].to_str().unwrap().to_string();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ty, String::from_utf8(body.to_vec()).unwrap())
}

fn receiver() -> Receiver {
    let key = SigningKey::from_secret(SECRET).unwrap();
    Receiver::new(key, 300, 100, Box::new(std::io::sink()))
}

#[test]
fn the_demo_campaigns_parse() {
    let cs = campaigns();
    assert_eq!(cs.len(), CAMPAIGNS.len());
    // Tuesday noon in the store: lunch first, then a welcome back.
    let hq = demo_hq(cs);
    hq.observe(&linked("m1"));
    assert_eq!(
        hq.observe(&visit("v1", "m1")).unwrap().campaign_id,
        "lunch-20"
    );
    let again = hq.observe(&visit("v2", "m1")).unwrap();
    assert_eq!(again.campaign_id, "welcome-back");
    assert!(
        hq.observe(&visit("v3", "m1")).is_none(),
        "both capped today"
    );
    assert_eq!(
        line(&again),
        "[hq] message to member m1: \"Welcome back! Show this message at the till for a free \
         coffee today\" (campaign welcome-back, arrival 12:00)"
    );
}

#[tokio::test]
async fn the_page_escapes_and_the_json_lists_newest_first() {
    let evil = Campaign::parse(
        br#"{"id": "x<1>", "text": "<script>alert('hi')</script> & \"more\"",
             "audience": {"all_members": true}, "daily_cap": 5}"#,
    )
    .unwrap();
    let hq = demo_hq(vec![evil]);
    let r = Arc::new(receiver());
    let (s, ty, page) = get(&hq, &r, "/").await;
    assert_eq!(
        (s, ty.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(page.contains("No message yet"), "{page}");
    assert!(page.contains("http-equiv=\"refresh\" content=\"2\""));

    hq.observe(&linked("m<b>"));
    hq.observe(&visit("v1", "m<b>"));
    hq.observe(&visit("v2", "m<b>"));
    let (_, _, page) = get(&hq, &r, "/").await;
    assert!(
        !page.contains("<script>") && !page.contains("m<b>"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt; &amp; &quot;more&quot;")
    );
    assert!(page.contains("m&lt;b&gt;") && page.contains("Tue 2026-12-01 12:00"));
    assert!(
        !page.contains("src=") && !page.contains("href=\"http"),
        "no external assets"
    );

    let (s, ty, body) = get(&hq, &r, "/messages.json").await;
    assert_eq!((s, ty.as_str()), (StatusCode::OK, "application/json"));
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|m| m["visit_event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v2", "v1"]);
    assert_eq!(list[0]["member_id"], "m<b>");
    assert_eq!(list[0]["campaign_id"], "x<1>");
    assert_eq!(list[0]["arrival_local"], "2026-12-01T12:00:00");
}

#[test]
fn the_list_is_bounded() {
    let hq = demo_hq(vec![
        Campaign::parse(
            br#"{"id": "c", "text": "t", "audience": {"all_members": true}, "daily_cap": 1000}"#,
        )
        .unwrap(),
    ]);
    hq.observe(&linked("m1"));
    for i in 0..KEPT + 5 {
        assert!(hq.observe(&visit(&format!("v{i}"), "m1")).is_some());
    }
    let kept = hq.messages();
    assert_eq!(kept.len(), KEPT);
    assert_eq!(kept[0].visit_event_id, format!("v{}", KEPT + 4));
}

#[tokio::test]
async fn a_signed_arrival_at_the_receiver_becomes_a_message() {
    let hq = demo_hq(campaigns());
    let r = Arc::new(receiver().with_observer(hq.observer()));
    let post = |events: Vec<Value>| {
        let body = serde_json::to_vec(&events).unwrap();
        let key = SigningKey::from_secret(SECRET).unwrap();
        let mut b = Request::post("/storegate/events")
            .header("content-type", "application/cloudevents-batch+json");
        for (k, v) in key.headers("msg_1", Timestamp::now().millis() / 1000, &body) {
            b = b.header(k, v);
        }
        b.body(Full::new(Bytes::from(body))).unwrap()
    };
    let resp = answer(&r, &hq, post(vec![linked("m1"), visit("v1", "m1")])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The same batch again: the receiver drops the duplicates.
    let resp = answer(&r, &hq, post(vec![linked("m1"), visit("v1", "m1")])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = hq.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].visit_event_id, "v1");
    assert_eq!(sent[0].store_id, "demo-01");
    // The receiver's other routes still answer; other methods on the page
    // paths are the receiver's (404 there).
    let (s, _, body) = get(&hq, &r, "/storegate/healthz").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
    let req = Request::post("/").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(answer(&r, &hq, req).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn serves_on_a_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
    let hq = demo_hq(campaigns());
    let server = tokio::spawn(serve(
        listener,
        Arc::new(receiver()),
        hq,
        stop.clone(),
        tasks.clone(),
    ));
    let mut s = TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /messages.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("[]"), "{text}");
    stop.cancel();
    server.await.unwrap();
    tasks.close();
    tasks.wait().await;
}
