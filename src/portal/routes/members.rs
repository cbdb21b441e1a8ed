//! The member sign-in routes: phone + code and member number, the
//! pages they show, and how refusals are answered.
//!
//! A texted code costs the retailer money and the guest LAN is hostile,
//! so the phone form carries a code ticket (`Members::code_ticket`) that
//! only a `GET` of the sign-in page hands out and a sent code spends:
//! posting the code form in a loop, with or without the day's form
//! token, sends nothing. A refused request shows the form again with the
//! same ticket (nothing was sent, it is still good); a sign-in page that
//! came from anything but a `GET` carries what was posted, never a new
//! one.

use super::*;

/// What the shopper typed into the member forms, carried from page to
/// page (hidden fields) and shown again after an error. Never logged.
#[derive(Debug, Default, Clone)]
pub(super) struct MemberInput {
    pub(super) dst: Option<String>,
    pub(super) staff: Option<String>,
    pub(super) phone: String,
    pub(super) member_number: String,
    pub(super) consent: Consent,
    /// The form token for the pages this input is shown on again (a
    /// fresh one, not the one posted).
    pub(super) csrf: String,
    /// The code ticket posted with the phone form, shown again with it;
    /// `None` on a page that is no answer to a POST (a `GET` of the
    /// sign-in page), which gets a fresh one.
    pub(super) ticket: Option<String>,
}

impl MemberInput {
    pub(super) fn from_fields(fields: &[(String, String)], csrf: String) -> Self {
        let text = |key| {
            form::get(fields, key)
                .unwrap_or("")
                .trim()
                .chars()
                .take(MAX_NUMBER_LEN + 1)
                .collect::<String>()
        };
        MemberInput {
            dst: valid_dst(form::get(fields, "dst")),
            staff: valid_staff(form::get(fields, "staff")),
            phone: text("phone"),
            member_number: text("member_number"),
            consent: Consent {
                remember_device: ticked(fields, "remember_device"),
                marketing: ticked(fields, "marketing"),
            },
            csrf,
            ticket: Some(
                form::get(fields, TICKET_FIELD)
                    .unwrap_or("")
                    .chars()
                    .take(MAX_TICKET_LEN)
                    .collect(),
            ),
        }
    }

    /// `&staff=CODE` for links, or nothing.
    pub(super) fn staff_q(&self) -> String {
        self.staff
            .as_deref()
            .map(|s| format!("&staff={s}"))
            .unwrap_or_default()
    }
}

/// The phone form's field that carries the code ticket.
const TICKET_FIELD: &str = "code_ticket";
/// Longest code ticket passed on (a real one has 43 characters).
const MAX_TICKET_LEN: usize = 64;

/// A sign-in that got past the member checks but failed further on.
pub(super) enum SignInError {
    Member(MemberError),
    Gate(GateError),
}

impl From<MemberError> for SignInError {
    fn from(e: MemberError) -> Self {
        SignInError::Member(e)
    }
}

impl From<GateError> for SignInError {
    fn from(e: GateError) -> Self {
        SignInError::Gate(e)
    }
}

/// The two sign-in forms: the sign-in page, and the page to enter a
/// texted code. A refusal shows the one it came from again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    Login,
    Code,
}

/// The start of every sign-in POST: same origin, a bounded form with
/// this device's form token, a device we can see, and not one HQ has
/// blocked.
pub(super) async fn sign_in_form<B: crate::http::Body>(
    cx: &Cx<'_>,
    req: Request<B>,
) -> Result<(Language, Vec<(String, String)>, MacAddr, MemberInput), Resp> {
    let portal = cx.portal;
    let (lang, fields) = posted_form(cx, req).await?;
    let Some(mac) = cx.asker.mac else {
        return Err(message(
            portal,
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            "error_title",
            "error_unknown_device",
        ));
    };
    if portal.is_blocked(mac) {
        return Err(blocked(portal, lang));
    }
    let input = MemberInput::from_fields(&fields, current_csrf(portal, Some(mac)));
    Ok((lang, fields, mac, input))
}

/// `POST /signin/code`, phone sign-in, step 1: make a code, have HQ
/// text it, ask for it.
pub(super) async fn request_code<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    let portal = cx.portal;
    let (lang, fields, mac, input) = match sign_in_form(cx, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    if input.phone.is_empty() && !input.member_number.is_empty() {
        // Enter pressed in the member-number field.
        return member_sign_in(cx, lang, mac, input).await;
    }
    let (Some(members), Some(sender)) = (portal.members.clone(), portal.messages.clone()) else {
        return bad(portal, StatusCode::NOT_FOUND, lang, "not_found");
    };
    let retry = if form::get(&fields, "from") == Some("code") {
        Form::Code
    } else {
        Form::Login
    };
    if input.phone.is_empty() || input.phone.chars().count() > MAX_NUMBER_LEN {
        return refused(portal, lang, &input, Form::Login, MemberError::BadPhone);
    }
    // The ticket was minted for the page's form token, which the guard
    // has just checked belongs to this device.
    let holder = form::get(&fields, "csrf").unwrap_or("").to_string();
    let ticket = input.ticket.clone().unwrap_or_default();
    let (phone, m) = (input.phone.clone(), members.clone());
    let (h, t) = (holder.clone(), ticket.clone());
    let now = portal.gate.clock().now();
    let issued = match tokio::task::spawn_blocking(move || {
        m.request_code_for_page(&phone, mac, &h, &t, now)
    })
    .await
    {
        Ok(Ok(issued)) => issued,
        Ok(Err(e)) => return refused(portal, lang, &input, retry, e),
        Err(e) => {
            tracing::error!(mac = %mac.redacted(), "code request task: {e}");
            return busy(portal, lang);
        }
    };
    // The text goes out now, while the shopper waits; the phone number and
    // the code are never logged.
    if let Err(e) = sender
        .send_otp(&issued.phone_e164, &issued.code, lang.tag())
        .await
    {
        tracing::warn!(mac = %mac.redacted(), "the sign-in code could not be sent: {e}");
        // Nothing was sent: the page's ticket may pay for another try.
        members.return_code_ticket(&holder, &ticket, portal.gate.clock().now());
        let error = crate::web::error_box(lang, "error_send_code");
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return form_page(portal, retry, lang, status, &input, Some(&error));
    }
    drop(issued);
    form_page(portal, Form::Code, lang, StatusCode::OK, &input, None)
}

/// `POST /signin/verify`, phone sign-in, step 2: check the code, link,
/// authorise.
pub(super) async fn verify_code<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    let portal = cx.portal;
    let (lang, fields, mac, input) = match sign_in_form(cx, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let Some(members) = portal.members.clone() else {
        return bad(portal, StatusCode::NOT_FOUND, lang, "not_found");
    };
    if input.phone.is_empty() || input.phone.chars().count() > MAX_NUMBER_LEN {
        return refused(portal, lang, &input, Form::Login, MemberError::BadPhone);
    }
    // "123 456" is a code too.
    let code: String = form::get(&fields, "code")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(MAX_NUMBER_LEN)
        .collect();
    if code.is_empty() {
        PortalStats::bump(&portal.stats.bad_requests);
        let error = crate::web::error_box(lang, "error_enter_code");
        let status = StatusCode::BAD_REQUEST;
        return form_page(portal, Form::Code, lang, status, &input, Some(&error));
    }
    let (gate, ip) = (portal.gate.clone(), cx.asker.ip);
    let (phone, consent, staff) = (input.phone.clone(), input.consent, input.staff.clone());
    let outcome = blocking(move || {
        let now = gate.clock().now();
        let member_id = members.verify_code(&phone, &code, mac, now)?;
        members.link(&member_id, mac, consent, staff.as_deref(), now)?;
        gate.authorize(mac, Some(ip), AuthMethod::Otp, Some(member_id))?;
        Ok(())
    })
    .await;
    signed_in(portal, lang, mac, &input, Form::Code, outcome)
}

/// `POST /signin/member`: member-number sign-in.
pub(super) async fn member_number<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    match sign_in_form(cx, req).await {
        Ok((lang, _, mac, input)) => member_sign_in(cx, lang, mac, input).await,
        Err(page) => page,
    }
}

/// Member-number sign-in: check the number, link, authorise.
async fn member_sign_in(cx: &Cx<'_>, lang: Language, mac: MacAddr, input: MemberInput) -> Resp {
    let portal = cx.portal;
    let Some(members) = portal.members.clone() else {
        return bad(portal, StatusCode::NOT_FOUND, lang, "not_found");
    };
    if input.member_number.is_empty() || input.member_number.chars().count() > MAX_NUMBER_LEN {
        return refused(
            portal,
            lang,
            &input,
            Form::Login,
            MemberError::BadMemberNumber,
        );
    }
    let (gate, ip) = (portal.gate.clone(), cx.asker.ip);
    let (number, consent, staff) = (
        input.member_number.clone(),
        input.consent,
        input.staff.clone(),
    );
    let outcome = blocking(move || {
        let now = gate.clock().now();
        let member_id = members.verify_member_number(&number, mac, now)?;
        members.link(&member_id, mac, consent, staff.as_deref(), now)?;
        gate.authorize(mac, Some(ip), AuthMethod::MemberNumber, Some(member_id))?;
        Ok(())
    })
    .await;
    signed_in(portal, lang, mac, &input, Form::Login, outcome)
}

/// The answer to a member sign-in: `303` to the welcome page, or the
/// page that says what went wrong.
pub(super) fn signed_in(
    portal: &Portal,
    lang: Language,
    mac: MacAddr,
    input: &MemberInput,
    retry: Form,
    outcome: Result<(), SignInError>,
) -> Resp {
    match outcome {
        Ok(()) => {
            PortalStats::bump(&portal.stats.sign_ins);
            let mut location = format!("/welcome?lang={}", lang.tag());
            if let Some(d) = &input.dst {
                location.push_str("&dst=");
                location.push_str(&url_encode(d));
            }
            see_other(&location)
        }
        Err(SignInError::Member(e)) => refused(portal, lang, input, retry, e),
        Err(SignInError::Gate(e)) => {
            tracing::error!(mac = %mac.redacted(), "member sign-in failed: {e}");
            busy(portal, lang)
        }
    }
}

/// A refused member sign-in: the form again (with what was typed), the
/// reason in the shopper's language, and a status that fits.
pub(super) fn refused(
    portal: &Portal,
    lang: Language,
    input: &MemberInput,
    retry: Form,
    err: MemberError,
) -> Resp {
    let text = t(lang, err.key());
    let (status, page, wait, text) = match &err {
        MemberError::RateLimited { retry_after } | MemberError::NumberLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            retry,
            Some(*retry_after),
            text.replace("{wait}", &crate::web::wait_text(lang, *retry_after)),
        ),
        MemberError::LockedOut { until } => {
            let wait = portal.gate.clock().now().until(*until);
            (
                StatusCode::TOO_MANY_REQUESTS,
                Form::Login,
                Some(wait),
                text.replace("{wait}", &crate::web::wait_text(lang, wait)),
            )
        }
        MemberError::WrongCode { attempts_left } => (
            StatusCode::BAD_REQUEST,
            Form::Code,
            None,
            text.replace("{n}", &attempts_left.to_string()),
        ),
        MemberError::BadPhone
        | MemberError::NoCode
        | MemberError::BadMemberNumber
        | MemberError::UnknownMember => (StatusCode::BAD_REQUEST, Form::Login, None, text),
        MemberError::CountryNotAllowed => {
            let countries = portal
                .members
                .as_ref()
                .map(|m| {
                    let codes: Vec<String> = m
                        .config()
                        .otp_countries
                        .iter()
                        .map(|cc| format!("+{cc}"))
                        .collect();
                    codes.join(", ")
                })
                .unwrap_or_default();
            let text = text.replace("{countries}", &countries);
            (StatusCode::FORBIDDEN, Form::Login, None, text)
        }
        // No form: a new ticket comes only with a fresh load of the page.
        MemberError::PageExpired => {
            return bad(portal, StatusCode::FORBIDDEN, lang, err.key());
        }
        MemberError::Store(_) => {
            tracing::error!("member sign-in: {err}");
            return message(
                portal,
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                "error_title",
                err.key(),
            );
        }
    };
    PortalStats::bump(&portal.stats.bad_requests);
    let error = crate::web::text_box(&text);
    let mut resp = form_page(portal, page, lang, status, input, Some(&error));
    if let Some(w) = wait {
        reply::retry_after(&mut resp, w);
    }
    resp
}

/// The page for a device HQ has blocked.
pub(super) fn blocked(portal: &Portal, lang: Language) -> Resp {
    PortalStats::bump(&portal.stats.bad_requests);
    message(
        portal,
        StatusCode::FORBIDDEN,
        lang,
        "blocked_title",
        "error_blocked",
    )
}

/// The member form of the sign-in page: the two consents (unticked unless
/// the shopper ticked them before an error), phone and code when HQ can
/// send texts, member number. Empty without members.
pub(super) fn member_section(portal: &Portal, lang: Language, input: &MemberInput) -> String {
    let Some(members) = &portal.members else {
        return String::new();
    };
    let phone = if portal.phone_sign_in() {
        // A fresh ticket only for a page that answers a GET; a page that
        // answers a POST carries the ticket posted.
        let ticket = match &input.ticket {
            Some(t) => t.clone(),
            None if input.csrf.is_empty() => String::new(),
            None => members.code_ticket(&input.csrf, portal.gate.clock().now()),
        };
        render(
            pages::PHONE,
            lang,
            &[("phone", &input.phone), ("ticket", &ticket)],
            &[],
        )
    } else {
        String::new()
    };
    // Said where the number is typed: without the operator's trust, a
    // member number signs in for this session only.
    let number_note = if members.config().member_number_trusted {
        String::new()
    } else {
        let mut note = t(lang, "member_number_note");
        if portal.phone_sign_in() {
            if lang == Language::En {
                note.push(' ');
            }
            note.push_str(&t(lang, "member_number_note_phone"));
        }
        format!("<p class=\"fine\">{}</p>", escape(&note))
    };
    let checked = |on: bool| if on { " checked" } else { "" };
    // Enter in either field sends the form to its default action; a
    // member number sent to /signin/code is signed in as one.
    let action = if portal.phone_sign_in() {
        "/signin/code"
    } else {
        "/signin/member"
    };
    render(
        pages::MEMBER,
        lang,
        &[
            ("action", action),
            ("dst", input.dst.as_deref().unwrap_or("")),
            ("staff", input.staff.as_deref().unwrap_or("")),
            ("remember_checked", checked(input.consent.remember_device)),
            ("marketing_checked", checked(input.consent.marketing)),
            (
                "consent_version",
                &t(lang, "consent_version").replace("{v}", &members.config().consent_version),
            ),
            ("member_number", &input.member_number),
            ("csrf", &input.csrf),
        ],
        &[("phone", &phone), ("number_note", &number_note)],
    )
}

/// Phone sign-in, step 2: the code page, carrying what step 1 was given.
pub(super) fn code_html(
    portal: &Portal,
    lang: Language,
    input: &MemberInput,
    error: Option<&str>,
) -> String {
    let yes = |on: bool| if on { "yes" } else { "" };
    let dst = input.dst.as_deref().unwrap_or("");
    let sent_to = t(lang, "code_sent").replace("{last4}", &last4_digits(&input.phone));
    render(
        pages::CODE,
        lang,
        &[
            ("store", &portal.site.store_name),
            ("sent_to", &sent_to),
            ("phone", &input.phone),
            ("remember", yes(input.consent.remember_device)),
            ("marketing", yes(input.consent.marketing)),
            ("staff", input.staff.as_deref().unwrap_or("")),
            ("dst", dst),
            ("dst_q", &url_encode(dst)),
            ("staff_q", &input.staff_q()),
            ("csrf", &input.csrf),
        ],
        &[("error", error.unwrap_or(""))],
    )
}

/// `GET /welcome`: a signed-in member's page: greeting, HQ's campaign
/// for them, the members' Wi-Fi key when the sign-in earned one (only on
/// a `GET`: shown once), time left.
pub(super) async fn welcome(cx: &Cx<'_>, get: bool) -> Resp {
    let (portal, asker, lang) = (cx.portal, &cx.asker, cx.page_lang());
    let dst = cx.dst();
    let dst = dst.as_deref();
    let Some(client) = asker.client.as_ref() else {
        return see_other(&format!("/login?lang={}", lang.tag()));
    };
    let Some(left) = client.remaining(asker.now) else {
        return see_other(&format!("/login?lang={}", lang.tag()));
    };
    let Some(member_id) = client.member_id.as_deref() else {
        return status_page(portal, asker, lang, dst);
    };
    let phone_hint = portal
        .members
        .as_ref()
        .and_then(|m| m.phone_last4(member_id))
        .map(|l| format!(" \u{2022}\u{2022}{l}"))
        .unwrap_or_default();
    let campaigns = portal.sync.campaigns();
    let offer = campaign::for_member(&campaigns, member_id)
        .map(|c| render(pages::CAMPAIGN, lang, &[("name", &c.name)], &[]))
        .unwrap_or_default();
    let wifi = super::wifi::welcome_section(cx, client, member_id, lang, get).await;
    let html = render(
        pages::WELCOME,
        lang,
        &[
            ("store", &portal.site.store_name),
            ("phone_hint", &phone_hint),
            ("remaining", &crate::web::remaining_text(lang, left)),
            ("csrf", &current_csrf(portal, asker.mac)),
        ],
        &[
            ("campaign", &offer),
            ("wifi", &wifi),
            ("continue", &continue_link(lang, dst)),
        ],
    );
    plain(StatusCode::OK, "text/html; charset=utf-8", &html)
}
