//! Which of HQ's campaigns the welcome page shows a member.
//!
//! A campaign's `audience` (the sync document, `docs/hq-integration.md`)
//! is a set of conditions, all of which must hold. The box knows two:
//!
//! - `"all_members": true` — every member who signs in;
//! - `"member_ids": ["m_…", …]` — these members (the `member_id`s of
//!   `member.linked` events).
//!
//! An audience with a key the box does not know (say `"tiers"`) is HQ's
//! own targeting, which the box cannot check: it is never shown at the
//! portal. So is an audience with no condition at all (`{}`), and one
//! whose known keys have another type or value (`"all_members": false`).
//! The first matching campaign in the document's order is shown: HQ
//! lists them by priority.

use serde_json::{Map, Value};

use crate::uplink::sync::Campaign;

/// Does this audience include `member_id`?
pub fn audience_matches(audience: &Map<String, Value>, member_id: &str) -> bool {
    !audience.is_empty()
        && audience.iter().all(|(key, value)| match key.as_str() {
            "all_members" => value.as_bool() == Some(true),
            "member_ids" => value
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(member_id))),
            _ => false,
        })
}

/// The first campaign aimed at `member_id`, if any.
pub fn for_member<'a>(campaigns: &'a [Campaign], member_id: &str) -> Option<&'a Campaign> {
    campaigns
        .iter()
        .find(|c| audience_matches(&c.audience, member_id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn campaign(id: &str, audience: Value) -> Campaign {
        Campaign {
            id: id.into(),
            name: format!("{id} name"),
            audience: audience.as_object().cloned().unwrap(),
        }
    }

    fn matches(audience: Value, member: &str) -> bool {
        audience_matches(audience.as_object().unwrap(), member)
    }

    #[test]
    fn all_members_matches_everyone() {
        assert!(matches(json!({"all_members": true}), "m_a"));
        assert!(!matches(json!({"all_members": false}), "m_a"));
        assert!(!matches(json!({"all_members": "yes"}), "m_a"));
    }

    #[test]
    fn member_ids_match_only_those_listed() {
        let a = json!({"member_ids": ["m_a", "m_b"]});
        assert!(matches(a.clone(), "m_a"));
        assert!(matches(a.clone(), "m_b"));
        assert!(!matches(a, "m_c"));
        assert!(!matches(json!({"member_ids": []}), "m_a"));
        assert!(!matches(json!({"member_ids": "m_a"}), "m_a"));
        assert!(!matches(json!({"member_ids": [1, null, "m_x"]}), "m_a"));
    }

    #[test]
    fn conditions_all_hold_and_unknown_ones_never_do() {
        assert!(matches(
            json!({"all_members": true, "member_ids": ["m_a"]}),
            "m_a"
        ));
        assert!(!matches(
            json!({"all_members": true, "member_ids": ["m_a"]}),
            "m_b"
        ));
        // HQ's own targeting, which the box cannot check.
        assert!(!matches(
            json!({"all_members": true, "tiers": ["gold"]}),
            "m_a"
        ));
        assert!(!matches(
            json!({"tiers": ["gold"], "returning": true}),
            "m_a"
        ));
        assert!(!matches(json!({}), "m_a"), "no condition, nobody");
    }

    #[test]
    fn the_first_match_in_document_order_wins() {
        let list = vec![
            campaign("gold", json!({"tiers": ["gold"]})),
            campaign("vip", json!({"member_ids": ["m_vip"]})),
            campaign("everyone", json!({"all_members": true})),
            campaign("later", json!({"all_members": true})),
        ];
        assert_eq!(for_member(&list, "m_vip").unwrap().id, "vip");
        assert_eq!(for_member(&list, "m_other").unwrap().id, "everyone");
        assert!(for_member(&list[..2], "m_other").is_none());
        assert!(for_member(&[], "m_vip").is_none());
    }
}
