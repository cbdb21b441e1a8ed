//! Events for HQ: the CloudEvents envelope (`event`) and the durable
//! outbox they wait in (`outbox`). Delivery to HQ is not built yet; until
//! it is, events stay in the outbox (visible with `storegate ctl events`).

pub mod event;
pub mod outbox;
pub mod sink;

pub use event::CloudEvent;
pub use outbox::Outbox;
