use super::*;

const MIN: Duration = Duration::from_secs(60);

fn policy() -> SessionPolicy {
    SessionPolicy {
        session_timeout: 60 * MIN,
        idle_timeout: 10 * MIN,
        max_preauth: 3,
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

fn ip(n: u8) -> Option<IpAddr> {
    Some(IpAddr::from([192, 0, 2, n]))
}

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(minutes: u64) -> Timestamp {
    T0.plus(minutes as u32 * MIN)
}

fn ended(actions: &[Action]) -> Vec<(MacAddr, EndReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(SessionEvent::Ended { mac, reason, .. }) => Some((*mac, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn authorize_persists_before_allowing_and_reports() {
    let mut s = Sessions::new(policy());
    s.seen(mac(1), ip(10), T0);
    assert_eq!(s.preauth_count(), 1);
    let actions = s.authorize(mac(1), ip(10), AuthMethod::ClickThrough, None, at(1));
    assert!(matches!(actions[0], Action::Save(ref c) if c.is_authorized()));
    assert_eq!(
        actions[1],
        Action::Allow {
            mac: mac(1),
            until: at(61)
        }
    );
    assert!(matches!(
        actions[2],
        Action::Event(SessionEvent::Authorized {
            method: AuthMethod::ClickThrough,
            ..
        })
    ));
    let c = s.get(mac(1)).unwrap();
    assert_eq!(c.authorized_at, Some(at(1)));
    assert_eq!(c.first_seen, T0);
    assert_eq!(c.remaining(at(31)), Some(30 * MIN));
    assert_eq!((s.authorized_count(), s.preauth_count()), (1, 0));
}

#[test]
fn session_timeout_ends_the_session_exactly_on_time() {
    let mut s = Sessions::new(policy());
    s.authorize(mac(1), ip(10), AuthMethod::ClickThrough, None, T0);
    for m in (5..60).step_by(5) {
        s.activity(mac(1), at(m));
        assert!(s.tick(at(m)).is_empty(), "ended early at {m} min");
    }
    s.activity(mac(1), at(60));
    let actions = s.tick(at(60));
    assert_eq!(ended(&actions), [(mac(1), EndReason::SessionTimeout)]);
    assert_eq!(actions[0], Action::Forget(mac(1)));
    assert_eq!(actions[1], Action::Revoke(mac(1)));
    assert_eq!(s.get(mac(1)).unwrap().state, ClientState::Preauth);
    assert!(s.tick(at(61)).is_empty(), "ended twice");
}

#[test]
fn idle_timeout_counts_from_the_last_activity() {
    let mut s = Sessions::new(policy());
    s.authorize(mac(1), ip(10), AuthMethod::ClickThrough, None, T0);
    s.authorize(mac(2), ip(11), AuthMethod::ClickThrough, None, T0);
    s.activity(mac(1), at(8));
    assert!(s.tick(at(9)).is_empty());
    // mac(2) has been idle for 10 minutes; mac(1) only for 2.
    assert_eq!(ended(&s.tick(at(10))), [(mac(2), EndReason::IdleTimeout)]);
    // Activity reported out of order never moves the clock back.
    s.activity(mac(1), at(3));
    assert_eq!(ended(&s.tick(at(18))), [(mac(1), EndReason::IdleTimeout)]);
}

#[test]
fn operator_end_and_logout_revoke_once() {
    let mut s = Sessions::new(policy());
    s.authorize(mac(1), ip(10), AuthMethod::Operator, None, T0);
    let actions = s.end(mac(1), EndReason::Logout, at(2));
    assert_eq!(ended(&actions), [(mac(1), EndReason::Logout)]);
    assert!(s.end(mac(1), EndReason::Operator, at(3)).is_empty());
    assert!(s.end(mac(9), EndReason::Operator, at(3)).is_empty());
    assert_eq!((s.authorized_count(), s.preauth_count()), (0, 1));
}

#[test]
fn signing_in_again_renews_the_session() {
    let mut s = Sessions::new(policy());
    s.authorize(mac(1), ip(10), AuthMethod::ClickThrough, None, T0);
    let actions = s.authorize(mac(1), ip(12), AuthMethod::Otp, Some("m-1".into()), at(30));
    assert_eq!(
        actions[1],
        Action::Allow {
            mac: mac(1),
            until: at(90)
        }
    );
    let c = s.get(mac(1)).unwrap();
    assert_eq!(c.ip, ip(12));
    assert_eq!(c.member_id.as_deref(), Some("m-1"));
    assert_eq!(s.authorized_count(), 1);
    s.activity(mac(1), at(59));
    assert!(
        s.tick(at(60)).is_empty(),
        "the first session's end must not apply"
    );
}

#[test]
fn restore_reallows_running_sessions_and_ends_expired_ones() {
    let mut first = Sessions::new(policy());
    let saved: Vec<Client> = [1, 2]
        .into_iter()
        .flat_map(|n| {
            first.authorize(
                mac(n),
                ip(n),
                AuthMethod::ClickThrough,
                None,
                at(n as u64 * 30),
            )
        })
        .filter_map(|a| match a {
            Action::Save(c) => Some(c),
            _ => None,
        })
        .collect();
    // Restart at minute 95: mac(1)'s session ended at 90, mac(2)'s runs to 120.
    let mut s = Sessions::new(policy());
    let actions = s.restore(saved, at(95));
    assert!(actions.contains(&Action::Allow {
        mac: mac(2),
        until: at(120)
    }));
    assert!(actions.contains(&Action::Forget(mac(1))));
    assert_eq!(ended(&actions), [(mac(1), EndReason::SessionTimeout)]);
    assert!(s.get(mac(1)).is_none());
    assert_eq!(s.get(mac(2)).unwrap().authorized_at, Some(at(60)));
    // The idle clock restarts at the restart, not at the sign-in.
    assert!(s.tick(at(104)).is_empty());
    assert_eq!(ended(&s.tick(at(105))), [(mac(2), EndReason::IdleTimeout)]);
}

#[test]
fn preauth_clients_are_capped_and_forgotten() {
    let mut s = Sessions::new(policy());
    for n in 1..=3 {
        s.seen(mac(n), ip(n), at(n as u64));
    }
    s.seen(mac(1), ip(1), at(5)); // mac(2) is now the longest unseen
    s.seen(mac(4), ip(4), at(6));
    assert_eq!(s.preauth_count(), 3);
    assert!(s.get(mac(2)).is_none());
    assert!(s.get(mac(4)).is_some());
    // Authorised clients never count against the pre-auth cap.
    s.authorize(mac(5), ip(5), AuthMethod::ClickThrough, None, at(7));
    assert_eq!((s.preauth_count(), s.authorized_count()), (3, 1));
    assert!(s.get(mac(1)).is_some());
    // An hour after they were last seen, pre-auth clients are forgotten.
    s.activity(mac(5), at(66));
    s.tick(at(66));
    assert_eq!(s.preauth_count(), 0);
    assert_eq!(s.authorized_count(), 1);
}

#[test]
fn by_ip_prefers_the_latest_holder() {
    let mut s = Sessions::new(policy());
    s.seen(mac(1), ip(10), T0);
    s.seen(mac(2), ip(10), at(1));
    assert_eq!(s.by_ip(ip(10).unwrap()).unwrap().mac, mac(2));
    assert!(s.by_ip(ip(11).unwrap()).is_none());
}

#[test]
fn a_session_past_its_end_has_no_time_left_before_the_tick() {
    let mut s = Sessions::new(policy());
    s.authorize(mac(1), ip(10), AuthMethod::ClickThrough, None, T0);
    let c = s.get(mac(1)).unwrap();
    assert_eq!(c.remaining(at(59)), Some(MIN));
    assert_eq!(
        c.remaining(at(60)),
        None,
        "over at its end, not at the next tick"
    );
    assert!(
        c.is_authorized(),
        "still formally authorised until tick runs"
    );
}

#[test]
fn a_clock_step_moves_only_the_sessions_stamped_by_the_old_clock() {
    let mut s = Sessions::new(policy());
    // Restored from before this process: stamped by a good clock.
    s.authorize(mac(1), ip(10), AuthMethod::ClickThrough, None, at(0));
    // Authorised by this process while the clock ran 2 hours slow.
    s.authorize(mac(2), ip(11), AuthMethod::ClickThrough, None, at(30));
    s.activity(mac(2), at(31));
    let step = 120 * 60_000;
    let moved = s.shift_clock(at(20), at(32), step);
    assert_eq!(moved, [mac(2)]);
    let c = s.get(mac(2)).unwrap();
    assert_eq!(c.authorized_at, Some(at(150)));
    assert_eq!(c.expires_at, Some(at(210)));
    assert_eq!(c.last_active, Some(at(151)));
    assert_eq!(s.get(mac(1)).unwrap().expires_at, Some(at(60)));
    // By the corrected clock, mac 2 still has its hour, mac 1 is over.
    let over = ended(&s.tick(at(152)));
    assert_eq!(over, [(mac(1), EndReason::SessionTimeout)]);
}

#[test]
fn wire_names_match_serde() {
    for m in [
        AuthMethod::ClickThrough,
        AuthMethod::Otp,
        AuthMethod::MemberNumber,
        AuthMethod::ReturningDevice,
        AuthMethod::WifiKey,
        AuthMethod::Operator,
    ] {
        assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
    }
    for r in [
        EndReason::Logout,
        EndReason::SessionTimeout,
        EndReason::IdleTimeout,
        EndReason::Operator,
        EndReason::FirewallError,
    ] {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
}
