//! The tests of a running script: each one's values taken from the
//! message, the envelope or the Env, then compared with its keys.

use super::super::compare::MatchKind;
use super::super::compile::{AddrPart, BodyTransform, Cond, Zone};
use super::super::{date, notify, DuplicateMark};
use super::{address_part, pick, split_flags, Run, Scope};
use crate::sieve::RunError;

impl Run<'_, '_> {
    pub(super) fn cond(&mut self, c: &Cond, scope: &mut Scope) -> Result<bool, RunError> {
        self.step()?;
        Ok(match c {
            Cond::True => true,
            Cond::False => false,
            Cond::Not(t) => !self.cond(t, scope)?,
            Cond::AllOf(l) => {
                for t in l {
                    if !self.cond(t, scope)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::AnyOf(l) => {
                for t in l {
                    if self.cond(t, scope)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::Exists(names) => self
                .expand_all(names, scope)
                .iter()
                .all(|n| self.msg.has(n)),
            Cond::Size { over, limit } => {
                let s = self.msg.size() as u64;
                if *over {
                    s > *limit
                } else {
                    s < *limit
                }
            }
            Cond::Header {
                names,
                keys,
                m,
                index,
            } => {
                let mut values = Vec::new();
                for n in self.expand_all(names, scope) {
                    let v = self.msg.values(&n);
                    values.extend(pick(v, *index));
                }
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
            Cond::Address {
                part,
                names,
                keys,
                m,
                index,
            } => {
                let mut values = Vec::new();
                for n in self.expand_all(names, scope) {
                    let fields = self.msg.addresses(&n);
                    for a in pick(fields, *index).into_iter().flatten() {
                        if let Some(p) = address_part(&a, *part) {
                            values.push(p);
                        }
                    }
                }
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
            Cond::Envelope {
                part,
                names,
                keys,
                m,
            } => {
                let mut values = Vec::new();
                for n in self.expand_all(names, scope) {
                    let a = match n.to_ascii_lowercase().as_str() {
                        "from" => Some(self.env_in.from.clone()),
                        "to" => Some(self.env_in.to.clone()),
                        "auth" => self.env_in.auth.clone(),
                        _ => None,
                    };
                    if let Some(a) = a {
                        // RFC 5228 5.4: the null reverse-path is "" for
                        // :all and matches nothing else.
                        if a.is_empty() {
                            if *part == AddrPart::All {
                                values.push(String::new());
                            }
                        } else if let Some(p) = address_part(&a, *part) {
                            values.push(p);
                        }
                    }
                }
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
            Cond::String { sources, keys, m } => {
                let mut values = self.expand_all(sources, scope);
                if let MatchKind::Count(_) = m.kind {
                    // RFC 5229 5: empty strings are not counted.
                    values.retain(|v| !v.is_empty());
                }
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
            Cond::Body {
                transform,
                types,
                keys,
                m,
            } => {
                let values = match transform {
                    BodyTransform::Raw => vec![self.msg.raw_body()],
                    BodyTransform::Text => self.msg.body_parts(&["text".to_string()], true),
                    BodyTransform::Content => {
                        let t = self.expand_all(types, scope);
                        self.msg.body_parts(&t, false)
                    }
                };
                let keys = self.expand_all(keys, scope);
                // Body tests never set match variables (RFC 5173 5).
                let saved = self.matches.clone();
                let r = self.compare(m, &values, &keys);
                self.matches = saved;
                r
            }
            Cond::Date {
                zone,
                header,
                part,
                keys,
                m,
                index,
            } => {
                let h = self.expand(header, scope);
                let raw: Vec<String> = self.msg.values(&h);
                let dates: Vec<date::Moment> = pick(raw, *index)
                    .iter()
                    .filter_map(|v| date::parse_date(v))
                    .collect();
                let part = self.expand(part, scope);
                let mut values = Vec::new();
                for d in dates {
                    let d = match zone {
                        Zone::Original => d,
                        Zone::Local => date::Moment {
                            unix: d.unix,
                            offset: self.env.now().1,
                        },
                        Zone::Fixed(z) => date::Moment {
                            unix: d.unix,
                            offset: date::parse_zone(&self.expand(z, scope)).unwrap_or(0),
                        },
                    };
                    if let Some(v) = date::part(d, &part) {
                        values.push(v);
                    }
                }
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
            Cond::CurrentDate {
                zone,
                part,
                keys,
                m,
            } => {
                let (unix, local) = self.env.now();
                let offset = match zone {
                    Zone::Fixed(z) => date::parse_zone(&self.expand(z, scope)).unwrap_or(0),
                    _ => local,
                };
                let part = self.expand(part, scope);
                let values: Vec<String> = date::part(date::Moment { unix, offset }, &part)
                    .into_iter()
                    .collect();
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
            Cond::HasFlag { vars, flags, m } => {
                let current = if vars.is_empty() {
                    self.flags.clone()
                } else {
                    let v: Vec<String> = vars.iter().map(|n| self.get_var(n, scope)).collect();
                    split_flags(&v)
                };
                let keys = self.expand_all(flags, scope);
                self.compare(m, &current, &keys)
            }
            Cond::MailboxExists(names) => {
                let names = self.expand_all(names, scope);
                names.iter().all(|n| self.env.mailbox_exists(n))
            }
            Cond::Duplicate {
                handle,
                header,
                uniqueid,
                seconds,
                last,
            } => {
                let id = match (header, uniqueid) {
                    (_, Some(u)) => Some(self.expand(u, scope)),
                    (Some(h), None) => self.msg.values(&self.expand(h, scope)).into_iter().next(),
                    (None, None) => self.msg.values("message-id").into_iter().next(),
                };
                let Some(id) = id.filter(|i| !i.is_empty()) else {
                    return Ok(false);
                };
                let handle = handle
                    .as_ref()
                    .map(|h| self.expand(h, scope))
                    .unwrap_or_default();
                let key = format!("{handle}\u{0}{id}");
                let period = seconds
                    .unwrap_or(self.limits.duplicate_default_period)
                    .min(self.limits.duplicate_max_period);
                let seen = self.env.duplicate_seen(&key);
                if !self.duplicates.iter().any(|d| d.key == key) {
                    self.duplicates.push(DuplicateMark {
                        key,
                        seconds: period,
                        last: *last,
                    });
                    seen
                } else {
                    // The same id tested twice in one run: seen the second time.
                    true
                }
            }
            Cond::SpamTest { percent, keys, m } => {
                let v = self
                    .env
                    .spamtest(*percent)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "0".into());
                let keys = self.expand_all(keys, scope);
                self.compare(m, &[v], &keys)
            }
            Cond::VirusTest { keys, m } => {
                let v = self
                    .env
                    .virustest()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "0".into());
                let keys = self.expand_all(keys, scope);
                self.compare(m, &[v], &keys)
            }
            Cond::ValidNotifyMethod(uris) => {
                let uris = self.expand_all(uris, scope);
                uris.iter().all(|u| notify::check_uri(u).is_ok())
            }
            Cond::NotifyMethodCapability { uri, cap, keys, m } => {
                let uri = self.expand(uri, scope);
                let cap = self.expand(cap, scope);
                if notify::check_uri(&uri).is_err() {
                    return Ok(false);
                }
                // RFC 5436 2.6: mailto cannot know whether the user is
                // online.
                let values = if cap.eq_ignore_ascii_case("online") {
                    vec!["maybe".to_string()]
                } else {
                    Vec::new()
                };
                let keys = self.expand_all(keys, scope);
                self.compare(m, &values, &keys)
            }
        })
    }
}
