//! What becomes of a post: distributed, held for a moderator, refused, or
//! dropped. Pure: the facts about the post in, a [`Verdict`] out.
//!
//! The order of the checks is the order of their importance:
//!
//! 1. Loops: a post carrying this list's own `List-Id:` (RFC 2919) came
//!    back to us; it is dropped with a log line, never sent again.
//! 2. No backscatter: a post with the null sender is a bounce or an
//!    automatic notice sent to the posting address; dropped, logged.
//! 3. An approval token (see `held`) lets a post past everything below.
//! 4. Automatic mail (`Auto-Submitted:` other than `no`, RFC 3834) and
//!    mail from other lists or bulk senders (`Precedence: bulk|junk|list`,
//!    another list's `List-Id:`) is held: the list never answers it with
//!    more mail, and a moderator may still let it through.
//! 5. The size and attachment limits: refused with a reason.
//! 6. The posting policy; a sender who may not post is held or refused
//!    as the list says.
//!
//! A refusal becomes a bounced recipient in kmp-local, so kmp-send sends
//! the DSN to the envelope sender: only kmp-local (as vmail) can read the
//! member store, so the SMTP session cannot refuse the post itself, and a
//! DSN is what the sender of a refused post must get. It is never sent for
//! mail with the null sender (dropped at step 2).

use super::{List, NonMember, Policy};

/// The facts about a post the policy looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Post {
    /// The envelope sender; empty for the null sender.
    pub sender: String,
    /// The addresses of `From:`.
    pub from: Vec<String>,
    /// The identifiers (between `<>`) of every `List-Id:` field.
    pub list_ids: Vec<String>,
    /// The value of `Auto-Submitted:`, if any.
    pub auto_submitted: Option<String>,
    /// The value of `Precedence:`, if any.
    pub precedence: Option<String>,
    pub size: u64,
    pub attachments: u32,
    /// A moderator approved it.
    pub approved: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Distribute,
    /// Held for a moderator, with the reason.
    Hold(String),
    /// Refused: the RFC 3463 code and the reason (the DSN's text).
    Refuse(&'static str, String),
    /// Dropped without any answer (a loop, a bounce), with the reason.
    Discard(String),
}

/// Decides what becomes of `post` on `list`; `is_member` answers for an
/// address.
pub fn decide(list: &List, post: &Post, is_member: &dyn Fn(&str) -> bool) -> Verdict {
    let own = list.list_id();
    if post.list_ids.iter().any(|i| i.eq_ignore_ascii_case(&own)) {
        return Verdict::Discard(format!(
            "mail loop: the message carries this list's own List-Id <{own}>"
        ));
    }
    if post.sender.is_empty() {
        return Verdict::Discard(
            "a bounce or automatic notice (null sender) sent to the posting address".into(),
        );
    }
    if post.approved {
        return Verdict::Distribute;
    }
    if let Some(a) = &post.auto_submitted {
        if !a.trim().eq_ignore_ascii_case("no") {
            return Verdict::Hold(format!("automatic mail (Auto-Submitted: {})", a.trim()));
        }
    }
    if let Some(p) = &post.precedence {
        let p = p.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list") {
            return Verdict::Hold(format!("bulk or list mail (Precedence: {p})"));
        }
    }
    if let Some(other) = post.list_ids.first() {
        return Verdict::Hold(format!("mail from another list (List-Id: <{other}>)"));
    }
    if list.max_size > 0 && post.size > list.max_size {
        return Verdict::Refuse(
            "5.3.4",
            format!(
                "the message is {} bytes, more than the {} bytes list {} accepts",
                post.size, list.max_size, list.address
            ),
        );
    }
    if let Some(max) = list.max_attachments {
        if post.attachments > max {
            return Verdict::Refuse(
                "5.6.0",
                format!(
                    "the message has {} attachments; list {} accepts {}",
                    post.attachments,
                    list.address,
                    if max == 0 {
                        "none".to_string()
                    } else {
                        format!("at most {max}")
                    }
                ),
            );
        }
    }
    let senders =
        || std::iter::once(post.sender.as_str()).chain(post.from.iter().map(String::as_str));
    if senders().any(|s| List::names(&list.owners, s) || List::names(&list.moderators, s)) {
        return Verdict::Distribute;
    }
    let not_allowed = |why: String| match list.non_member {
        NonMember::Hold => Verdict::Hold(why),
        NonMember::Refuse => Verdict::Refuse("5.7.1", why),
    };
    match list.policy {
        Policy::Open => Verdict::Distribute,
        Policy::Moderated => Verdict::Hold("the list is moderated".into()),
        Policy::Members => {
            if senders().any(|s| is_member(s) || List::names(&list.posters, s)) {
                Verdict::Distribute
            } else {
                not_allowed(format!(
                    "{} is not a member of list {}",
                    post.sender, list.address
                ))
            }
        }
        Policy::Announce => {
            if senders().any(|s| List::names(&list.posters, s)) {
                Verdict::Distribute
            } else {
                not_allowed(format!(
                    "only the list's named posters may post to {}",
                    list.address
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdb::Address;

    fn list(policy: Policy) -> List {
        let mut l = List::new(&Address::parse("news@example.test").unwrap(), 0);
        l.policy = policy;
        l.owners = vec!["boss@example.test".into()];
        l.posters = vec!["editor@example.test".into()];
        l
    }

    fn post(sender: &str) -> Post {
        Post {
            sender: sender.into(),
            from: vec![sender.into()],
            size: 100,
            ..Post::default()
        }
    }

    #[test]
    fn each_policy_for_members_and_others() {
        let member = |a: &str| a.eq_ignore_ascii_case("m@x.test");
        let d = |p: Policy, s: &str| decide(&list(p), &post(s), &member);
        assert_eq!(d(Policy::Open, "any@x.test"), Verdict::Distribute);
        assert_eq!(d(Policy::Members, "M@x.test"), Verdict::Distribute);
        assert!(
            matches!(d(Policy::Members, "any@x.test"), Verdict::Hold(r) if r.contains("not a member"))
        );
        assert!(matches!(d(Policy::Moderated, "m@x.test"), Verdict::Hold(_)));
        assert_eq!(
            d(Policy::Moderated, "boss@example.test"),
            Verdict::Distribute
        );
        assert!(matches!(d(Policy::Announce, "m@x.test"), Verdict::Hold(_)));
        assert_eq!(
            d(Policy::Announce, "editor@example.test"),
            Verdict::Distribute
        );
        let mut l = list(Policy::Members);
        l.non_member = NonMember::Refuse;
        assert!(matches!(
            decide(&l, &post("any@x.test"), &member),
            Verdict::Refuse("5.7.1", _)
        ));
        // A member named only in From: (an envelope rewritten by a forwarder).
        let mut p = post("bounces@forwarder.test");
        p.from = vec!["m@x.test".into()];
        assert_eq!(
            decide(&list(Policy::Members), &p, &member),
            Verdict::Distribute
        );
    }

    #[test]
    fn loops_bounces_and_automatic_mail_are_never_distributed() {
        let l = list(Policy::Open);
        let none = |_: &str| false;
        let mut p = post("a@x.test");
        p.list_ids = vec!["NEWS.example.test".into()];
        assert!(matches!(decide(&l, &p, &none), Verdict::Discard(r) if r.contains("loop")));
        p.approved = true;
        assert!(matches!(decide(&l, &p, &none), Verdict::Discard(_)));
        assert!(matches!(decide(&l, &post(""), &none), Verdict::Discard(_)));
        let mut p = post("a@x.test");
        p.auto_submitted = Some("auto-replied".into());
        assert!(matches!(decide(&l, &p, &none), Verdict::Hold(_)));
        p.auto_submitted = Some("No".into());
        assert_eq!(decide(&l, &p, &none), Verdict::Distribute);
        p.precedence = Some("bulk".into());
        assert!(matches!(decide(&l, &p, &none), Verdict::Hold(_)));
        let mut p = post("a@x.test");
        p.list_ids = vec!["other.example.org".into()];
        assert!(matches!(decide(&l, &p, &none), Verdict::Hold(r) if r.contains("another list")));
        p.approved = true;
        assert_eq!(decide(&l, &p, &none), Verdict::Distribute);
    }

    #[test]
    fn limits_refuse_with_a_reason() {
        let mut l = list(Policy::Open);
        l.max_size = 50;
        l.max_attachments = Some(0);
        let none = |_: &str| false;
        assert!(
            matches!(decide(&l, &post("a@x.test"), &none), Verdict::Refuse("5.3.4", r) if r.contains("100 bytes"))
        );
        l.max_size = 0;
        let mut p = post("a@x.test");
        p.attachments = 1;
        assert!(
            matches!(decide(&l, &p, &none), Verdict::Refuse(_, r) if r.contains("accepts none"))
        );
    }
}
