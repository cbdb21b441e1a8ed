//! Footfall through the facade, in a fixed +08:00 store.

use super::*;

/// Device `n` shows up once at `t` and is then left alone to end.
fn pass_by(p: &mut Presence, n: u8, t: Timestamp) {
    run_until(p, t);
    p.observe(&arp(n), t);
}

#[test]
fn arrivals_count_in_local_hours_and_days_not_utc() {
    let mut p = presence();
    pass_by(&mut p, 1, at_s(9 * 3600 + 59 * 60 + 59)); // 09:59:59 local
    pass_by(&mut p, 2, local(0, 10, 0)); // 10:00:00 local, 02:00Z
    pass_by(&mut p, 3, at_s(23 * 3600 + 59 * 60 + 30)); // 23:59:30 local
    pass_by(&mut p, 4, local(1, 0, 0)); // 00:00 local next day, 16:00Z
    run_until(&mut p, local(1, 1, 0));
    let f = p.footfall(local(1, 1, 0));
    assert_eq!(f.today, date(2026, 11, 24));
    let (d0, d1) = (&f.days[12], &f.days[13]);
    assert_eq!(d0.date, today());
    let hours =
        |d: &DayView| -> Vec<usize> { (0..24).filter(|h| d.arrivals_by_hour[*h] > 0).collect() };
    assert_eq!(hours(d0), [9, 10, 23]);
    assert_eq!(hours(d1), [0]);
    assert_eq!((d0.arrivals, d1.arrivals), (3, 1));
    assert_eq!(f.present_now, 0);
}

#[test]
fn dwell_buckets_new_and_returning_and_frequency() {
    let mut p = presence();
    // Day 0: device 1's first visit.
    p.observe(&arp(1), local(0, 8, 0));
    run_until(&mut p, local(0, 9, 0));
    // Day 1: five visitors staying 2 m, 10 m, 30 m, 2 h and 7 h from
    // 08:00; device 1 is one of them, and comes twice more.
    let stays = [(1u8, 2u64), (2, 10), (3, 30), (4, 120), (5, 420)];
    let start = local(1, 8, 0);
    let mut now = start;
    while now <= local(1, 15, 0) {
        p.tick(now);
        for (n, minutes) in stays {
            if now <= start.plus(Duration::from_secs(minutes * 60)) {
                p.observe(&arp(n), now);
            }
        }
        now = now.plus(Duration::from_secs(30));
    }
    for h in [16, 18] {
        run_until(&mut p, local(1, h, 0));
        p.observe(&arp(1), local(1, h, 0));
        run_until(&mut p, local(1, h, 30));
    }
    let f = p.footfall(local(1, 20, 0));
    let d1 = &f.days[13];
    assert_eq!(
        d1.dwell,
        DwellBuckets {
            under_5m: 3, // device 1's 2 m, and its two later pass-bys
            from_5m_to_20m: 1,
            from_20m_to_60m: 1,
            from_1h_to_6h: 1,
            over_6h: 1,
        }
    );
    assert_eq!(d1.arrivals, 7);
    assert_eq!(d1.arrivals_by_hour[8], 5);
    assert_eq!((d1.new_devices, d1.returning_devices), (4, 1));
    assert_eq!(
        (f.days[12].new_devices, f.days[12].returning_devices),
        (1, 0)
    );
    assert_eq!(f.days[12].dwell.under_5m, 1);
    // Device 1: four visits in 30 days; the others one each.
    assert_eq!(
        f.visit_frequency,
        VisitFrequency {
            once: 4,
            twice: 0,
            three_to_five: 1,
            six_or_more: 0
        }
    );
    // Thirty days on, none of it counts.
    assert_eq!(
        p.footfall(local(32, 0, 0)).visit_frequency,
        VisitFrequency::default()
    );
}

#[test]
fn present_now_counts_visitors_in_the_store_only() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(2), T0);
    p.observe(&release(2), at(1));
    assert_eq!(
        p.footfall(at(1)).present_now,
        1,
        "a departed visit is pending, not present"
    );
    let json = serde_json::to_value(p.footfall(at(1))).unwrap();
    assert_eq!(json["present_now"], 1);
    assert_eq!(json["days"].as_array().unwrap().len(), 14);
    assert_eq!(json["days"][13]["arrivals_by_hour"][0], 2);
}
