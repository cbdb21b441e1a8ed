//! Signing in and the session it starts: the password (a new one signs
//! everyone out), the limits on attempts (per client, in all, and while
//! passwords are being checked), the session cookie, the CSRF token every
//! POST needs, and what a request without a session gets.

use super::*;

#[tokio::test]
async fn without_a_session_apis_answer_401_and_pages_redirect() {
    let d = fixture();
    for path in [
        "/api/devices",
        "/api/live",
        "/api/events",
        "/api/visits.csv",
    ] {
        let (status, _, _) = get(&d, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _, _) = post(&d, "/api/devices/00:11:22:00:00:01/block", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for path in ["/", "/devices"] {
        let (status, headers, _) = get(&d, path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/login");
    }
    let (status, _, _) = get(&d, "/api/devices", Some("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie() {
    let d = fixture();
    let (status, headers, _) = try_password(&d, "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    let (status, headers, _) = try_password(&d, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(id.len(), 64, "32 random bytes, hex");
    let (status, _, page) = get(&d, "/", Some(id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"present-now\""));
    assert!(page.contains("Wulin &lt;Store&gt;"));
}

/// Even the right password is refused for now, with a time to come back.
async fn assert_locked_out(d: &Dashboard) {
    let (status, headers, _) = try_password(d, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn sign_in_attempts_are_limited_in_all_too_but_never_lock_the_manager_out() {
    let d = fixture();
    // Guessers on several /64s spend the shared budget, a few tries each.
    let guesser = |i: u32| -> IpAddr { format!("2001:db8:{:x}::1", i % 8).parse().unwrap() };
    for i in 0..auth::MAX_ATTEMPTS_TOTAL {
        let resp = routes::route(
            &d,
            guesser(i),
            req("POST", "/login", None, "password=nope-nope"),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // A guesser's next try is refused for the total...
    let resp = routes::route(
        &d,
        guesser(0),
        req("POST", "/login", None, "password=nope-nope"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...but the manager, from an address of its own, still signs in.
    let (status, _, _) = try_password(&d, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the manager was locked out");
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let d = fixture();
    for _ in 0..auth::MAX_ATTEMPTS {
        let (status, _, _) = try_password(&d, "nope-nope").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_locked_out(&d).await;
}

#[tokio::test]
async fn posts_need_the_csrf_token() {
    let d = fixture();
    let (id, csrf) = sign_in(&d).await;
    let path = format!("/api/devices/{}/block", mac(1));
    let (status, _, _) = post(&d, &path, Some(&id), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post(&d, &path, Some(&id), "csrf=wrong").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!d.app.blocklist.manager().contains(mac(1)));
    let mut r = req("POST", &path, Some(&id), "");
    r.headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    let (status, _, _) = call(&d, r).await;
    assert_eq!(status, StatusCode::OK);
    assert!(d.app.blocklist.manager().contains(mac(1)));
    let (status, _, _) = post(&d, "/logout", Some(&id), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_sign_in_while_passwords_are_being_checked_gets_429() {
    let d = fixture();
    let busy = d
        .auth
        .verifying
        .clone()
        .try_acquire_many_owned(auth::MAX_VERIFYING as u32)
        .unwrap();
    let (status, headers, _) = try_password(&d, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(!headers.contains_key(header::SET_COOKIE));
    drop(busy);
    sign_in(&d).await;
    assert_eq!(
        d.auth.verifying.available_permits(),
        auth::MAX_VERIFYING,
        "permits come back"
    );
}

#[tokio::test]
async fn a_new_password_signs_everyone_out() {
    let d = fixture();
    let (id, _) = sign_in(&d).await;
    d.app.set_dashboard_password("another-pass-2").unwrap();
    let (status, _, _) = get(&d, "/api/devices", Some(&id)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(matches!(
        d.app.set_dashboard_password("short"),
        Err(auth::AuthError::BadPassword)
    ));
}
