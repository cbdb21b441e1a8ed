//! Events for HQ: the CloudEvents envelope (`event`), the durable outbox
//! they wait in (`outbox`), Standard Webhooks signatures (`signing`),
//! delivery to `{hq.url}/events` (`delivery`), the sink that turns session
//! events into outbox events (`sink`), and the two HQ clients: the signed
//! sync document from `{hq.url}/sync` (`sync`) and OTP texts through
//! `{hq.url}/messages` (`messages`). HQ's side of these (the reference
//! receiver) is `crate::hq`.

pub mod delivery;
pub mod event;
pub mod messages;
pub mod outbox;
pub mod signing;
pub mod sink;
pub mod sync;

pub use event::CloudEvent;
pub use outbox::Outbox;
