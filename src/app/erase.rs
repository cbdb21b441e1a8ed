//! Erasing a member from the box: the record and bindings
//! (`Members::erase`, which queues `member.erased` for HQ), then the
//! member's sessions (ended: the phone is a stranger again) and the
//! member id on devices and visits.

use serde::Serialize;

use super::App;
use crate::members::MemberError;
use crate::uplink::event::Event;

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub member_id: String,
    pub erased: bool,
    pub devices_unbound: usize,
    pub sessions_ended: usize,
    pub presence_devices_scrubbed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("not available: member sign-in is off")]
    MembersOff,
    #[error("unknown member {0:?}")]
    Unknown(String),
    #[error("could not erase the member: {0}")]
    Members(MemberError),
    #[error("could not end the member's sessions: {0}")]
    Sessions(String),
    #[error("could not queue member.erased for HQ: {0}")]
    Queue(String),
}

impl App {
    /// Erases `member_id` everywhere on the box and tells HQ. The scrub
    /// runs even for an id the member records no longer hold, so a
    /// repeated erase finishes what a failed one left.
    pub fn erase_member(&self, member_id: &str) -> Result<Erased, EraseError> {
        let members = self.members.as_ref().ok_or(EraseError::MembersOff)?;
        let now = self.clock.now();
        let (known, devices) = match members.erase(member_id, now) {
            Ok(e) => (true, e.devices.len()),
            Err(MemberError::UnknownMember) => (false, 0),
            Err(e) => return Err(EraseError::Members(e)),
        };
        let sessions = self
            .gate
            .forget_member(member_id)
            .map_err(|e| EraseError::Sessions(e.to_string()))?
            .len();
        let presence = self.presence.forget_member(member_id);
        if !known && sessions == 0 && presence == 0 {
            // At most 64 characters of operator input in the message.
            return Err(EraseError::Unknown(member_id.chars().take(64).collect()));
        }
        if !known {
            // Only sessions or presence knew it: HQ must still hear.
            let event = Event::MemberErased {
                member_id: member_id.to_string(),
            };
            self.events
                .emit(event, now)
                .map_err(|e| EraseError::Queue(e.to_string()))?;
        }
        Ok(Erased {
            member_id: member_id.to_string(),
            erased: true,
            devices_unbound: devices,
            sessions_ended: sessions,
            presence_devices_scrubbed: presence,
        })
    }
}
