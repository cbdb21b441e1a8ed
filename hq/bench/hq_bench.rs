//! HQ ingest into JetStream, and member arrival → targeted message, on
//! one machine. Run by `bench/hq.sh`, which starts the NATS servers.
//!
//! `hq_bench --nats URL[,URL...] [--replicas N] [--stores 1000]
//!  [--batch 50] [--batches 4] [--concurrency 64] [--runs 3] [--arrivals 200]`
//!
//! Ingest: `stores` simulated boxes, each with its own secret, post
//! pre-built signed batches of `batch` events (`batches` each) to two
//! gateways (started in this process, each with its own NATS
//! connection), `concurrency` requests in flight, keep-alive. Baseline
//! in the same run: a bare `async-nats` publisher of the same events
//! (same subjects, payloads and `Nats-Msg-Id`s), a batch published and
//! its acknowledgements awaited together, with the same concurrency and
//! two NATS connections like the two gateways.
//! Each run uses fresh event ids (nothing is a duplicate). The events are
//! `session.authorized`, which the messenger does not read, so the
//! arrivals measured next do not queue behind millions of ingested
//! visits (the messenger's own throughput is not what this measures). Printed:
//! events/s of each and their ratio, and the p50/p99 of the gateway
//! requests; medians over the runs.
//!
//! Arrivals: `arrivals` consenting members arrive one after another
//! (20 a second); the time from posting the `visit.started` batch to the
//! message's line at the file provider, p50/p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use storegate::uplink::signing::SigningKey;
use storegate_hq::config::HqConfig;
use tokio_util::sync::CancellationToken;

struct Args {
    nats: Vec<String>,
    replicas: usize,
    stores: usize,
    batch: usize,
    batches: usize,
    concurrency: usize,
    runs: usize,
    arrivals: usize,
}

fn args() -> Args {
    let mut a = Args {
        nats: vec!["nats://127.0.0.1:4222".into()],
        replicas: 1,
        stores: 1000,
        batch: 50,
        batches: 4,
        concurrency: 64,
        runs: 3,
        arrivals: 200,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        let n = || v.parse::<usize>().expect("a number");
        match pair[0].as_str() {
            "--nats" => a.nats = v.split(',').map(str::to_string).collect(),
            "--replicas" => a.replicas = n(),
            "--stores" => a.stores = n(),
            "--batch" => a.batch = n(),
            "--batches" => a.batches = n(),
            "--concurrency" => a.concurrency = n(),
            "--runs" => a.runs = n(),
            "--arrivals" => a.arrivals = n(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn secret(i: usize) -> String {
    use base64::Engine;
    let mut key = [7u8; 24];
    key[..8].copy_from_slice(&(i as u64).to_le_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn store_id(i: usize) -> String {
    format!("store-{i:04}")
}

fn config(a: &Args, port: u16, role: &str, sink: &std::path::Path) -> HqConfig {
    let servers: Vec<String> = a.nats.iter().map(|s| format!("{s:?}")).collect();
    let mut t = format!(
        "listen = \"127.0.0.1:{port}\"\nrole = \"{role}\"\n[nats]\nservers = [{}]\n\
         [jetstream]\nreplicas = {}\n[provider]\nfile = \"{}\"\n[targeting]\nrefresh = \"200ms\"\n",
        servers.join(","),
        a.replicas,
        sink.display()
    );
    for i in 0..a.stores {
        t.push_str(&format!(
            "[[stores]]\nid = \"{}\"\nsecrets = [{{ secret = \"{}\" }}]\n",
            store_id(i),
            secret(i)
        ));
    }
    HqConfig::parse(&t).expect("a valid config")
}

fn event(store: &str, ty: &str, seq: usize, data: Value) -> Value {
    json!({"specversion": "1.0", "id": uuid::Uuid::now_v7().to_string(),
           "source": format!("/stores/{store}"), "type": format!("com.storegate.{ty}"),
           "time": jiff::Timestamp::now().to_string(), "sequence": seq.to_string(),
           "datacontenttype": "application/json", "data": data})
}

fn visit_data(i: usize, member: Option<&str>) -> Value {
    json!({"visit_id": format!("v{i}"), "device_id": "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm8",
           "member_id": member, "recognised_by": "wifi_key", "returning": true,
           "mac_randomized": true, "os_family": "ios"})
}

/// One signed request, ready to send: (path, headers, body, events).
struct Prepared {
    body: Bytes,
    headers: [(&'static str, String); 3],
    subjects: Vec<(String, String, Bytes)>,
}

fn prepare(a: &Args) -> Vec<Prepared> {
    let now = jiff::Timestamp::now().as_second();
    let mut out = Vec::with_capacity(a.stores * a.batches);
    for b in 0..a.batches {
        for i in 0..a.stores {
            let store = store_id(i);
            let events: Vec<Value> = (0..a.batch)
                .map(|k| {
                    let data = json!({"device_id": format!("d{k}"), "method": "click_through",
                                      "member_id": null, "recognised_by": null});
                    event(&store, "session.authorized", b * a.batch + k + 1, data)
                })
                .collect();
            let body = serde_json::to_vec(&events).unwrap();
            let key = SigningKey::from_secret(&secret(i)).unwrap();
            let headers = key.headers(&format!("batch_{}", uuid::Uuid::now_v7()), now, &body);
            let subjects = events
                .iter()
                .map(|e| {
                    (
                        format!("storegate.{store}.session.authorized"),
                        e["id"].as_str().unwrap().to_string(),
                        Bytes::from(serde_json::to_vec(e).unwrap()),
                    )
                })
                .collect();
            out.push(Prepared {
                body: body.into(),
                headers,
                subjects,
            });
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn bare(
    js: [async_nats::jetstream::Context; 2],
    work: Arc<Vec<Prepared>>,
    concurrency: usize,
) -> f64 {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (js, work, next) = (js[t % 2].clone(), work.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = work.get(i) else { return };
                    let mut acks = Vec::with_capacity(p.subjects.len());
                    for (subject, id, payload) in &p.subjects {
                        let m = async_nats::jetstream::message::PublishMessage::build()
                            .payload(payload.clone())
                            .message_id(id)
                            .header("content-type", "application/cloudevents+json");
                        acks.push(
                            js.send_publish(subject.clone(), m)
                                .await
                                .unwrap()
                                .into_future(),
                        );
                    }
                    for r in futures_util::future::join_all(acks).await {
                        r.unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let events: usize = work.iter().map(|p| p.subjects.len()).sum();
    events as f64 / started.elapsed().as_secs_f64()
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn post(client: &HttpClient, port: u16, p: &Prepared) -> u16 {
    let mut req = http::Request::post(format!("http://127.0.0.1:{port}/events"))
        .header("content-type", "application/cloudevents-batch+json");
    for (n, v) in &p.headers {
        req = req.header(*n, v);
    }
    let resp = client
        .request(req.body(Full::new(p.body.clone())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

async fn gateways(
    ports: [u16; 2],
    work: Arc<Vec<Prepared>>,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build_http();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (client, work, next) = (client.clone(), work.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = work.get(i) else { return lat };
                    let port = ports[t % 2];
                    loop {
                        let sent = Instant::now();
                        let status = post(&client, port, p).await;
                        lat.push(sent.elapsed());
                        if status == 200 {
                            break;
                        }
                        assert_eq!(status, 503, "the gateway refused a batch");
                    }
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let events: usize = work.iter().map(|p| p.subjects.len()).sum();
    lat.sort();
    (events as f64 / started.elapsed().as_secs_f64(), lat)
}

async fn arrivals(
    a: &Args,
    port: u16,
    js: &async_nats::jetstream::Context,
    sink: &std::path::Path,
) {
    let campaigns = js.get_key_value("STOREGATE_CAMPAIGNS").await.unwrap();
    let c = json!({"id": "bench", "text": "Welcome back", "audience": {"all_members": true}});
    campaigns.put("bench", c.to_string().into()).await.unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let store = store_id(0);
    let key = SigningKey::from_secret(&secret(0)).unwrap();
    let signed = |events: Vec<Value>| {
        let body = serde_json::to_vec(&events).unwrap();
        let headers = key.headers(
            &format!("b_{}", uuid::Uuid::now_v7()),
            jiff::Timestamp::now().as_second(),
            &body,
        );
        Prepared {
            body: body.into(),
            headers,
            subjects: Vec::new(),
        }
    };
    let run = uuid::Uuid::now_v7().simple().to_string();
    let members: Vec<String> = (0..a.arrivals)
        .map(|i| format!("m{i}-{}", &run[..12]))
        .collect();
    let linked: Vec<Value> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            event(
                &store,
                "member.linked",
                i + 1,
                json!({"member_id": m, "device_id": "d",
                "staff_code": null, "remember_device": true, "marketing": true}),
            )
        })
        .collect();
    assert_eq!(post(&client, port, &signed(linked)).await, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let mut lat = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let before = lines(sink);
        let p = signed(vec![event(
            &store,
            "visit.started",
            i + 1,
            visit_data(i, Some(m)),
        )]);
        let sent = Instant::now();
        assert_eq!(post(&client, port, &p).await, 200);
        while lines(sink) == before {
            assert!(sent.elapsed() < Duration::from_secs(10), "no message");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        lat.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lat.sort();
    println!(
        "arrival → message at the provider: {} arrivals, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3
    );
    backlog(&store, &members, js).await;
}

/// The messenger's own rate: 10,000 `visit.started` of the consenting
/// members (most capped by then, a few messaged) published straight into
/// the stream, timed until the visits consumer has acknowledged them all.
async fn backlog(store: &str, members: &[String], js: &async_nats::jetstream::Context) {
    const N: usize = 10_000;
    let stream = js.get_stream("STOREGATE").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("targeting-visits").await.unwrap();
    let started = Instant::now();
    let mut acks: Vec<async_nats::jetstream::context::PublishAckFuture> = Vec::new();
    for i in 0..N {
        if acks.len() == 1000 {
            let chunk = acks.drain(..).map(|a| a.into_future());
            for r in futures_util::future::join_all(chunk).await {
                r.unwrap();
            }
        }
        let m = &members[i % members.len()];
        let e = event(store, "visit.started", i + 1, visit_data(i, Some(m)));
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(Bytes::from(serde_json::to_vec(&e).unwrap()))
            .message_id(e["id"].as_str().unwrap());
        let subject = format!("storegate.{store}.visit.started");
        acks.push(js.send_publish(subject, msg).await.unwrap());
    }
    for r in futures_util::future::join_all(acks.into_iter().map(|a| a.into_future())).await {
        r.unwrap();
    }
    loop {
        let info = consumer.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    println!(
        "messenger backlog: {N} member arrivals handled in {:.2} s, {:.0} arrivals/s",
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64()
    );
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("hq-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sink = dir.join("sent.jsonl");
        let shutdown = CancellationToken::new();
        let ports = [free_port(), free_port()];
        storegate_hq::server::start(config(&a, ports[0], "all", &sink), shutdown.clone())
            .await
            .unwrap();
        storegate_hq::server::start(config(&a, ports[1], "gateway", &sink), shutdown.clone())
            .await
            .unwrap();
        // Two connections, as the two gateways have.
        let connect = || async {
            async_nats::jetstream::new(async_nats::connect(a.nats.clone()).await.unwrap())
        };
        let bare_js = [connect().await, connect().await];
        let js = bare_js[0].clone();
        println!(
            "ingest: {} stores, batches of {}, {} per store, {} in flight, R{}, 2 gateways, {} runs",
            a.stores, a.batch, a.batches, a.concurrency, a.replicas, a.runs
        );
        let (mut bare_rates, mut gw_rates, mut p50s, mut p99s) = (vec![], vec![], vec![], vec![]);
        let mut ratios = vec![];
        for run in 0..a.runs {
            let work = Arc::new(prepare(&a));
            let b = bare(bare_js.clone(), work, a.concurrency).await;
            let work = Arc::new(prepare(&a));
            let (g, lat) = gateways(ports, work, a.concurrency).await;
            let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
            println!(
                "run {run}: bare {b:.0} ev/s, gateways {g:.0} ev/s ({:.2} × bare), request p50 {:.1} ms p99 {:.1} ms",
                g / b,
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
            ratios.push(g / b);
            bare_rates.push(b);
            gw_rates.push(g);
            p50s.push(p50.as_secs_f64() * 1e3);
            p99s.push(p99.as_secs_f64() * 1e3);
        }
        let (b, g) = (median(bare_rates), median(gw_rates));
        println!(
            "median: bare {b:.0} ev/s, gateways {g:.0} ev/s, ratio of medians {:.2}, median of run ratios {:.2}, request p50 {:.1} ms, p99 {:.1} ms",
            g / b,
            median(ratios),
            median(p50s),
            median(p99s)
        );
        if a.arrivals > 0 {
            arrivals(&a, ports[0], &js, &sink).await;
        }
        shutdown.cancel();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
