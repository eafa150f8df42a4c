//! URLAUTH (RFC 4467) and CATENATE (RFC 4469) for the webmail's forwards:
//! a signed URL of a stored message lets the submission server fetch it
//! itself (BURL, RFC 4468), and APPEND ... CATENATE lets the IMAP server
//! copy it into a new message, so the webmail never downloads it.

use super::command::{check_flag, Cmd};
use super::reply::{Response, Value};
use super::{Client, Error};

/// One piece of an APPEND ... CATENATE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catenate {
    /// Bytes sent as a literal.
    Text(Vec<u8>),
    /// An IMAP URL of a message (or part) the server already has.
    Url(String),
}

impl Client {
    /// GENURLAUTH of one rump URL (ending `;urlauth=ACCESS`) with the
    /// INTERNAL mechanism: the URL with its token.
    pub fn genurlauth(&mut self, rump: &str) -> Result<String, Error> {
        let mut cmd = Cmd::new("GENURLAUTH");
        cmd.str(rump).syn("INTERNAL");
        let done = self.run(&cmd)?;
        done.untagged
            .iter()
            .find_map(|r| match r {
                Response::Data { name, values, .. } if name == "GENURLAUTH" => {
                    values.first().and_then(Value::text)
                }
                _ => None,
            })
            .ok_or_else(|| Error::Protocol("GENURLAUTH without a URL".into()))
    }

    /// APPEND with CATENATE: the message made of `parts`; its (UIDVALIDITY,
    /// UID) when the server says.
    pub fn append_catenate(
        &mut self,
        folder: &str,
        flags: &[&str],
        parts: &[Catenate],
    ) -> Result<Option<(u32, u32)>, Error> {
        for f in flags {
            check_flag(f)?;
        }
        let mut cmd = Cmd::new("APPEND");
        cmd.str(self.mailbox(folder)?);
        cmd.syn(&format!("({})", flags.join(" ")));
        cmd.syn("CATENATE (");
        for p in parts {
            match p {
                Catenate::Text(t) => {
                    cmd.syn("TEXT").lit(t);
                }
                Catenate::Url(u) => {
                    cmd.syn("URL").str(u);
                }
            }
        }
        cmd.syn(")");
        let done = self.run(&cmd)?;
        Ok(match done.code {
            Some((c, v)) if c == "APPENDUID" => v
                .first()
                .and_then(Value::number32)
                .zip(v.get(1).and_then(Value::number32)),
            _ => None,
        })
    }
}
