//! Events for HQ: the CloudEvents envelope (`event`), the durable outbox
//! they wait in (`outbox`), Standard Webhooks signatures (`signing`),
//! delivery to `{hq.url}/events` (`delivery`), the sink that turns session
//! events into outbox events (`sink`), and the reference HQ endpoint
//! `storegate hq-receiver` (`receiver`).

pub mod delivery;
pub mod event;
pub mod outbox;
pub mod receiver;
pub mod signing;
pub mod sink;

pub use event::CloudEvent;
pub use outbox::Outbox;
