//! Signing in and out: the sign-in page, the password check (limited per
//! client and in all, and in how many run at once), the session cookie,
//! and what a request without a session gets.

use std::time::Duration;

use super::*;
use crate::web::t;

/// `GET /login`: the sign-in page, or `/` for a manager already in.
pub(super) fn page(cx: &Cx, m: Option<&Manager>) -> Resp {
    match m {
        Some(_) => see_other("/"),
        None => html(
            StatusCode::OK,
            views::login(cx.lang, &cx.d.store_name, None),
        ),
    }
}

/// `POST /login`: the password checked, a session made.
pub(super) async fn password<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    let (d, lang) = (cx.d, cx.lang);
    let now = Timestamp::now();
    if let Err(wait) = d.auth.attempts.attempt(cx.peer, now) {
        return too_many(d, lang, wait);
    }
    let fields = match form::read_body(req, MAX_BODY_BYTES).await {
        Ok(f) => f,
        Err(status) => return json_error(status, "the form could not be read"),
    };
    let lang = form::get(&fields, "lang")
        .and_then(Language::from_tag)
        .unwrap_or(lang);
    let password = form::get(&fields, "password").unwrap_or("").to_string();
    // Each check takes argon2's 7 MiB: only a few at once, and a sign-in
    // that finds them all busy is told to come back rather than queued.
    let Ok(permit) = d.auth.verifying.clone().try_acquire_owned() else {
        return too_many(d, lang, Duration::from_secs(1));
    };
    let store = d.app.store.clone();
    // argon2 takes tens of milliseconds: off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        auth::stored_hash(store.as_ref())
            .ok()
            .flatten()
            .is_some_and(|h| auth::verify_password(&h, &password))
    })
    .await
    .unwrap_or(false);
    if !ok {
        let text = t(lang, "dash_wrong_password");
        return html(
            StatusCode::UNAUTHORIZED,
            views::login(lang, &d.store_name, Some(&text)),
        );
    }
    let (id, _) = d.auth.sessions.create(now);
    let mut resp = see_other("/");
    add_cookie(
        &mut resp,
        &format!(
            "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
            auth::SESSION_TTL.as_secs()
        ),
    );
    resp
}

/// `429` with the sign-in page and `Retry-After` (whole seconds, at least 1).
fn too_many(d: &Dashboard, lang: Language, wait: Duration) -> Resp {
    let text = t(lang, "dash_rate_limited").replace("{wait}", &crate::web::wait_text(lang, wait));
    let mut resp = html(
        StatusCode::TOO_MANY_REQUESTS,
        views::login(lang, &d.store_name, Some(&text)),
    );
    reply::retry_after(&mut resp, wait);
    resp
}

/// `POST /logout`: ends the session.
pub(super) async fn sign_out<B: crate::http::Body>(
    cx: &Cx<'_>,
    m: &Manager,
    req: Request<B>,
) -> Resp {
    if let Err(refused) = posted(m, req).await {
        return refused;
    }
    cx.d.auth.sessions.remove(&m.id);
    let mut resp = see_other("/login");
    add_cookie(
        &mut resp,
        &format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"),
    );
    resp
}

/// Anything but the sign-in without a session: `401` for the APIs and
/// `/metrics`, the sign-in page for pages.
pub(super) fn first(path: &str) -> Resp {
    if path.starts_with("/api/") || path == "/metrics" {
        json_error(StatusCode::UNAUTHORIZED, "sign in first: POST /login")
    } else {
        see_other("/login")
    }
}
