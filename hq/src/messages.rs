//! `POST …/messages`: an OTP text from a box, `{"kind": "otp", "phone",
//! "code", "store_id", "locale"}`, signed with that store's secret.
//!
//! In order: the signature (the store named by `store_id`); the box's
//! `webhook-id`, kept across its retries, recorded create-only in KV so a
//! retry of a text already handed over is answered 200 without a second
//! text; blocked prefixes (`403`); the store's and the calling code's
//! quotas for the window (`429` with `Retry-After`); then the provider.
//! A provider failure is `502` and forgets the `webhook-id`, so the box's
//! retry tries again.
//!
//! No phone number or code appears in a log line or an answer: reasons
//! name fields, never their values.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use serde_json::Value;
use storegate::http::reply::{self, Reply};
use storegate::uplink::signing::SignedHeaders;

use crate::Gateway;
use crate::jet::key_part;
use crate::provider::Outbound;
use crate::quota::{self, Take};
use crate::routes::{Reject, check_content_type, read_signed, store_in_path};

/// The fields of an OTP request, as strings; the error names the field,
/// never its value.
fn parse(body: &[u8]) -> Result<[String; 5], Reject> {
    let bad = |m: &str| Reject(StatusCode::BAD_REQUEST, m.to_string());
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the body is not a JSON object"))?;
    let mut out: [String; 5] = Default::default();
    for (i, field) in ["kind", "phone", "code", "store_id", "locale"]
        .iter()
        .enumerate()
    {
        match obj.get(*field) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => out[i] = s.clone(),
            _ => {
                return Err(bad(&format!(
                    "\"{field}\" is missing or not a non-empty string"
                )));
            }
        }
    }
    if out[0] != "otp" {
        return Err(bad("\"kind\" is not \"otp\" (the only kind a box sends)"));
    }
    Ok(out)
}

pub async fn handle<B: storegate::http::Body>(
    gw: &Arc<Gateway>,
    req: Request<B>,
    now: i64,
) -> Result<Reply, Reject> {
    check_content_type(
        req.headers(),
        |m| m == "application/json" || m.ends_with("+json"),
        "application/json",
    )?;
    let path_store = store_in_path(req.uri().path());
    let (headers, body) = read_signed(gw, req, now).await?;
    let [_, phone, code, store_id, locale] = parse(&body)?;
    if path_store.as_ref().is_some_and(|p| *p != store_id) {
        return Err(Reject(
            StatusCode::FORBIDDEN,
            "store_id is not the store the path names".into(),
        ));
    }
    let store = gw
        .stores
        .get(&store_id)
        .await
        .map_err(|e| Reject(StatusCode::SERVICE_UNAVAILABLE, e))?
        .ok_or_else(|| {
            Reject(
                StatusCode::UNAUTHORIZED,
                format!("store {store_id:?} is not in the store registry"),
            )
        })?;
    let signed = SignedHeaders::from_header_map(&headers);
    store.verify(signed, &body, now, gw.tolerance_secs)?;
    let webhook_id = signed.id.unwrap_or_default().trim().to_string();

    let kv_error = |e: String| {
        gw.metrics.jetstream_error();
        tracing::warn!(store = %store_id, "messages: {e}");
        Reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "quotas cannot be checked now".into(),
        )
    };
    let seen_key = format!("m.{}.{}", key_part(&store_id), key_part(&webhook_id));
    match gw
        .jet
        .quotas
        .create(&seen_key, Bytes::from_static(b"1"))
        .await
    {
        Ok(_) => {}
        Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
            tracing::info!(store = %store_id, webhook_id, "text already handed over (a retry)");
            return Ok(reply::json(
                StatusCode::OK,
                &serde_json::json!({"accepted": 1, "duplicate": true}),
            ));
        }
        Err(e) => return Err(kv_error(e.to_string())),
    }
    let outcome = check_and_send(gw, &store_id, phone, code, locale, &webhook_id, now).await;
    if outcome.is_err() {
        // Not handed over: let the box's retry try again.
        let _ = gw.jet.quotas.purge(&seen_key).await;
    }
    outcome
}

async fn check_and_send(
    gw: &Arc<Gateway>,
    store_id: &str,
    phone: String,
    code: String,
    locale: String,
    webhook_id: &str,
    now: i64,
) -> Result<Reply, Reject> {
    let q = &gw.quotas;
    let cc = quota::calling_code(&phone)
        .ok_or_else(|| {
            Reject(
                StatusCode::BAD_REQUEST,
                "\"phone\" is not an E.164 number (+ and 8 to 15 digits)".into(),
            )
        })?
        .to_string();
    if q.blocked_prefixes
        .iter()
        .any(|p| phone.starts_with(p.as_str()))
    {
        return Err(Reject(
            StatusCode::FORBIDDEN,
            "texts to this number's prefix are blocked (quotas.blocked_prefixes)".into(),
        ));
    }
    let window = quota::window_index(now, q.window.as_secs());
    for (key, limit, what) in [
        (
            format!("q.s.{}.{window}", key_part(store_id)),
            q.per_store,
            "this store's",
        ),
        (
            format!("q.c.{cc}.{window}"),
            q.per_country,
            "this calling code's",
        ),
    ] {
        match quota::take(&gw.jet.quotas, &key, limit).await {
            Ok(Take::Granted) => {}
            Ok(Take::Exhausted) => {
                gw.metrics.texts_refused_quota.fetch_add(1, Relaxed);
                tracing::warn!(store = %store_id, calling_code = %cc, "text refused: {what} quota is used up");
                let secs = q.window.as_secs() as i64;
                let left = (window + 1) * secs - now;
                let mut r = crate::routes::text(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{what} quota of texts is used up for this window"),
                );
                if let Ok(v) = HeaderValue::from_str(&left.max(1).to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Ok(r);
            }
            Err(e) => {
                gw.metrics.jetstream_error();
                tracing::warn!(store = %store_id, "quota: {e}");
                return Err(Reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "quotas cannot be checked now".into(),
                ));
            }
        }
    }
    let message = Outbound::Otp {
        phone,
        code,
        store_id: store_id.to_string(),
        locale,
        request_id: webhook_id.to_string(),
    };
    match gw.provider.send(&message).await {
        Ok(()) => {
            gw.metrics.texts_sent.fetch_add(1, Relaxed);
            tracing::info!(store = %store_id, calling_code = %cc, webhook_id, "text handed to the provider");
            Ok(reply::json(
                StatusCode::OK,
                &serde_json::json!({"accepted": 1}),
            ))
        }
        Err(e) => {
            gw.metrics.provider_errors.fetch_add(1, Relaxed);
            tracing::warn!(store = %store_id, "text not sent: {e}");
            Err(Reject(
                StatusCode::BAD_GATEWAY,
                format!("the text was not sent: {e}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn refusals_never_echo_values() {
        for body in [
            &br#"{"kind":"otp","phone":8613800000000,"code":"123456","store_id":"s","locale":"en"}"#[..],
            br#"{"kind":"sms","phone":"+8613800000000","code":"123456","store_id":"s","locale":"en"}"#,
            b"+8613800000000",
        ] {
            let e = parse(body).err().unwrap();
            assert!(!e.1.contains("8613800000000") && !e.1.contains("123456"), "{}", e.1);
        }
        assert!(parse(br#"{"kind":"otp","phone":"+8613800000000","code":"1","store_id":"s","locale":"en"}"#).is_ok());
    }
}
