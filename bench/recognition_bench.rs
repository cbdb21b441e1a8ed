//! Members recognised with no sign-in over simulated days: by MAC alone
//! against MAC plus a personal Wi-Fi key, on one visit schedule, through
//! the real `Members` code (see `storegate::sim::recognition` for the
//! model). Prints the model and the shares.
//!
//! cargo run --release --example recognition_bench -- [MEMBERS] [DAYS] [ADOPTS] [SEED]

use storegate::sim::recognition::{Model, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let d = Model::default();
    let model = Model {
        members: arg(0).and_then(|s| s.parse().ok()).unwrap_or(d.members),
        days: arg(1).and_then(|s| s.parse().ok()).unwrap_or(d.days),
        adopts: arg(2).and_then(|s| s.parse().ok()).unwrap_or(d.adopts),
        seed: arg(3).and_then(|s| s.parse().ok()).unwrap_or(d.seed),
        ..d
    };
    let started = std::time::Instant::now();
    let r = run(&model);
    println!("model: {model:?}");
    println!(
        "MAC only:            {:>6} member visits, {:>6} recognised with no sign-in = {:.1} %",
        r.mac_only.visits,
        r.mac_only.recognised,
        100.0 * r.mac_only.share()
    );
    println!(
        "MAC + key, holders:  {:>6} visits after a key, {:>6} recognised = {:.1} %",
        r.key_holders.visits,
        r.key_holders.recognised,
        100.0 * r.key_holders.share()
    );
    println!(
        "MAC + key, everyone: {:>6} member visits, {:>6} recognised = {:.1} %",
        r.with_keys.visits,
        r.with_keys.recognised,
        100.0 * r.with_keys.share()
    );
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}
