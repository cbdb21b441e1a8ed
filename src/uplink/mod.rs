//! Events for HQ: the CloudEvents envelope (`event`), the durable outbox
//! they wait in (`outbox`), Standard Webhooks signatures (`signing`),
//! delivery to `{hq.url}/events` (`delivery`), the sink that turns session
//! events into outbox events (`sink`), the reference HQ endpoint
//! `storegate hq-receiver` (`receiver`), and the two HQ clients: the signed
//! sync document from `{hq.url}/sync` (`sync`) and OTP texts through
//! `{hq.url}/messages` (`messages`).

pub mod delivery;
pub mod event;
pub mod messages;
pub mod outbox;
pub mod receiver;
pub mod signing;
pub mod sink;
pub mod sync;

pub use event::CloudEvent;
pub use outbox::Outbox;
