//! vCard: 4.0 (RFC 6350) and 3.0 (RFC 2426) read and written, 2.1's
//! quoted-printable values read. One contact is one card; a file may hold
//! many. The webmail keeps each contact as the 4.0 text of its card.
//!
//! Read: lines unfolded (RFC 6350 3.2), property groups (`item1.EMAIL`)
//! ignored, values unescaped (3.4: `\n`, `\,`, `\;`, `\\`). Properties
//! other than the ones [`Contact`] has are skipped.

use super::{Address, Contact, ImportError, MAX_CONTACTS};

/// Which vCard to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V4,
}

/// Longest line written, in octets, before folding (RFC 6350 3.2).
const FOLD_AT: usize = 75;

/// Most lines one file may have.
const MAX_LINES: usize = 400_000;

/// Reads every card of `text`. A card without a name (FN or N) or without
/// EMAIL, or not closed with END:VCARD, refuses the whole file.
pub fn parse_all(text: &str) -> Result<Vec<Contact>, ImportError> {
    let lines = unfold(text);
    if lines.len() > MAX_LINES {
        return Err(ImportError::TooMany);
    }
    let mut out = Vec::new();
    let mut card: Option<Vec<Prop>> = None;
    for raw in &lines {
        if raw.trim().is_empty() {
            continue;
        }
        let Some(p) = Prop::parse(raw) else {
            continue;
        };
        match (p.name.as_str(), &mut card) {
            ("BEGIN", None) if p.value.eq_ignore_ascii_case("VCARD") => card = Some(Vec::new()),
            ("BEGIN", Some(_)) => {
                return Err(ImportError::Card {
                    number: out.len() + 1,
                    why: "end",
                })
            }
            ("END", Some(props)) if p.value.eq_ignore_ascii_case("VCARD") => {
                let number = out.len() + 1;
                let c = contact(props).map_err(|why| ImportError::Card { number, why })?;
                out.push(c);
                card = None;
                if out.len() > MAX_CONTACTS {
                    return Err(ImportError::TooMany);
                }
            }
            (_, Some(props)) => props.push(p),
            (_, None) => {}
        }
    }
    if card.is_some() {
        return Err(ImportError::Card {
            number: out.len() + 1,
            why: "end",
        });
    }
    if out.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(out)
}

/// Reads one stored card (the webmail's METADATA value); None when it is
/// not one.
pub fn parse_one(text: &str) -> Option<Contact> {
    parse_all(text).ok()?.into_iter().next()
}

/// A file's bytes as text: UTF-8 (BOM or not), else the other encodings
/// CSV files come in.
pub fn import(bytes: &[u8]) -> Result<Vec<Contact>, ImportError> {
    parse_all(&super::csv::decode(bytes)?)
}

/// The cards of `list`, one after the other.
pub fn write_all(list: &[Contact], v: Version) -> String {
    list.iter().map(|c| write(c, v)).collect()
}

/// One card.
pub fn write(c: &Contact, v: Version) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| fold(&mut out, &format!("{name}:{value}"));
    line("BEGIN", "VCARD");
    line(
        "VERSION",
        match v {
            Version::V3 => "3.0",
            Version::V4 => "4.0",
        },
    );
    if !c.id.is_empty() {
        line("UID", &esc(&c.id));
    }
    line("FN", &esc(&c.full_name));
    line(
        "N",
        &[&c.family, &c.given, &c.middle, &c.prefix, &c.suffix]
            .iter()
            .map(|s| esc(s))
            .collect::<Vec<_>>()
            .join(";"),
    );
    for (i, e) in c.emails.iter().enumerate() {
        let name = match (v, i) {
            (Version::V4, 0) => "EMAIL;PREF=1",
            (Version::V4, _) => "EMAIL",
            (Version::V3, 0) => "EMAIL;TYPE=INTERNET,PREF",
            (Version::V3, _) => "EMAIL;TYPE=INTERNET",
        };
        line(name, &esc(e));
    }
    for (t, n) in [
        ("cell", &c.mobile),
        ("work", &c.work_phone),
        ("home", &c.home_phone),
    ] {
        if !n.is_empty() {
            let name = match v {
                Version::V4 => format!("TEL;TYPE={t}"),
                Version::V3 => format!("TEL;TYPE={},VOICE", t.to_uppercase()),
            };
            line(&name, &esc(n));
        }
    }
    if !c.company.is_empty() || !c.department.is_empty() {
        line(
            "ORG",
            &format!("{};{}", esc(&c.company), esc(&c.department)),
        );
    }
    if !c.job_title.is_empty() {
        line("TITLE", &esc(&c.job_title));
    }
    for (t, a) in [("work", &c.work_address), ("home", &c.home_address)] {
        if !a.is_empty() {
            let t = match v {
                Version::V4 => t.to_string(),
                Version::V3 => t.to_uppercase(),
            };
            line(
                &format!("ADR;TYPE={t}"),
                &format!(
                    ";;{};{};{};{};{}",
                    esc(&a.street),
                    esc(&a.city),
                    esc(&a.region),
                    esc(&a.postcode),
                    esc(&a.country)
                ),
            );
        }
    }
    if !c.birthday.is_empty() {
        match (iso_date(&c.birthday), v) {
            (Some(d), Version::V4) => line("BDAY", &d.replace('-', "")),
            (Some(d), Version::V3) => line("BDAY", &d),
            (None, Version::V4) => line("BDAY;VALUE=text", &esc(&c.birthday)),
            (None, Version::V3) => line("BDAY", &esc(&c.birthday)),
        }
    }
    if !c.web.is_empty() {
        line("URL", &esc(&c.web));
    }
    if !c.note.is_empty() {
        line("NOTE", &esc(&c.note));
    }
    if !c.groups.is_empty() {
        line(
            "CATEGORIES",
            &c.groups
                .iter()
                .map(|g| esc(g))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    line("END", "VCARD");
    out
}

/// One property line: its name (upper case, group dropped), parameters
/// (names upper case) and raw value.
struct Prop {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl Prop {
    fn parse(line: &str) -> Option<Prop> {
        // The name and parameters end at the first ':' outside quotes.
        let mut in_quotes = false;
        let mut colon = None;
        for (i, c) in line.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ':' if !in_quotes => {
                    colon = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let colon = colon?;
        let (head, value) = (&line[..colon], &line[colon + 1..]);
        let mut parts = head.split(';');
        let name = parts.next()?.trim();
        let name = name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase();
        let params = parts
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (
                    k.trim().to_ascii_uppercase(),
                    v.trim_matches('"').to_string(),
                ),
                // vCard 2.1: a bare type (`TEL;CELL:`).
                None => ("TYPE".to_string(), p.trim().to_string()),
            })
            .collect();
        Some(Prop {
            name,
            params,
            value: value.to_string(),
        })
    }

    /// The TYPE values (and 4.0's PREF as `pref`), lower case.
    fn types(&self) -> Vec<String> {
        let mut t = Vec::new();
        for (k, v) in &self.params {
            match k.as_str() {
                "TYPE" => t.extend(v.split(',').map(|x| x.trim().to_ascii_lowercase())),
                "PREF" => t.push("pref".into()),
                _ => {}
            }
        }
        t
    }

    /// The value decoded: quoted-printable (2.1) in its charset.
    fn text(&self) -> String {
        let qp = self
            .params
            .iter()
            .any(|(k, v)| k == "ENCODING" && v.eq_ignore_ascii_case("QUOTED-PRINTABLE"));
        if !qp {
            return self.value.clone();
        }
        let bytes = crate::mime::transfer::decode_qp(self.value.as_bytes());
        let charset = self
            .params
            .iter()
            .find(|(k, _)| k == "CHARSET")
            .map(|(_, v)| v.as_str());
        crate::mime::charset::decode(&bytes, charset.or(Some("utf-8")))
    }
}

/// The contact of one card's properties, or why there is none.
fn contact(props: &[Prop]) -> Result<Contact, &'static str> {
    let mut c = Contact::default();
    let mut emails: Vec<(bool, String)> = Vec::new();
    for p in props {
        let text = p.text();
        let types = p.types();
        let is = |t: &str| types.iter().any(|x| x == t);
        match p.name.as_str() {
            "UID" => {
                let u = unesc(&text);
                if super::valid_id(&u) {
                    c.id = u;
                }
            }
            "FN" => c.full_name = unesc(&text),
            "N" => {
                let f = split(&text, ';');
                let get = |i: usize| f.get(i).cloned().unwrap_or_default();
                c.family = get(0);
                c.given = get(1);
                c.middle = get(2);
                c.prefix = get(3);
                c.suffix = get(4);
            }
            "EMAIL" => emails.push((is("pref") || is("1"), unesc(&text))),
            "TEL" => {
                let n = unesc(&text);
                let n = n.strip_prefix("tel:").unwrap_or(&n).to_string();
                let slot = if is("cell") {
                    &mut c.mobile
                } else if is("home") {
                    &mut c.home_phone
                } else if is("work") {
                    &mut c.work_phone
                } else if c.mobile.is_empty() {
                    &mut c.mobile
                } else {
                    &mut c.work_phone
                };
                if slot.is_empty() {
                    *slot = n;
                }
            }
            "ORG" => {
                let f = split(&text, ';');
                c.company = f.first().cloned().unwrap_or_default();
                c.department = f.get(1..).map(|d| d.join(" ")).unwrap_or_default();
            }
            "TITLE" => c.job_title = unesc(&text),
            "ADR" => {
                let f = split(&text, ';');
                let get = |i: usize| f.get(i).cloned().unwrap_or_default();
                let a = Address {
                    street: get(2),
                    city: get(3),
                    region: get(4),
                    postcode: get(5),
                    country: get(6),
                };
                let home = is("home") || (!is("work") && !c.work_address.is_empty());
                let slot = if home {
                    &mut c.home_address
                } else {
                    &mut c.work_address
                };
                if slot.is_empty() {
                    *slot = a;
                }
            }
            "BDAY" => {
                let b = unesc(&text);
                c.birthday = iso_date(&b).unwrap_or(b);
            }
            "URL" => c.web = unesc(&text),
            "NOTE" => c.note = unesc(&text),
            "CATEGORIES" => c.groups.extend(split(&text, ',')),
            _ => {}
        }
    }
    // The preferred address first, the others in the card's order.
    emails.sort_by_key(|(pref, _)| !*pref);
    c.emails = emails.into_iter().map(|(_, e)| e).collect();
    if c.full_name.trim().is_empty() && c.name_from_parts().trim().is_empty() {
        return Err("name");
    }
    c.normalise();
    if c.emails.is_empty() {
        return Err("email");
    }
    Ok(c)
}

/// `1980-02-29` from `19800229` or `1980-02-29` (and a time after it).
fn iso_date(s: &str) -> Option<String> {
    let s = s.split('T').next()?.trim();
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let shape_ok = s.len() == 8 && digits.len() == 8
        || s.len() == 10 && digits.len() == 8 && &s[4..5] == "-" && &s[7..8] == "-";
    if !shape_ok {
        return None;
    }
    let (y, m, d) = (&digits[..4], &digits[4..6], &digits[6..8]);
    let (mn, dn): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&mn) && (1..=31).contains(&dn)).then(|| format!("{y}-{m}-{d}"))
}

/// Unfolds lines: a line starting with a space or tab continues the one
/// before (RFC 6350 3.2); a 2.1 quoted-printable value ending in `=`
/// continues on the next line.
fn unfold(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut qp_open = false;
    for l in text.split('\n') {
        let l = l.strip_suffix('\r').unwrap_or(l);
        if let (Some(last), Some(rest)) = (out.last_mut(), l.strip_prefix([' ', '\t'])) {
            last.push_str(rest);
            continue;
        }
        if qp_open {
            if let Some(last) = out.last_mut() {
                last.pop();
                last.push_str(l);
                qp_open = l.ends_with('=');
                continue;
            }
        }
        qp_open = l.to_ascii_uppercase().contains("QUOTED-PRINTABLE") && l.ends_with('=');
        out.push(l.to_string());
    }
    out
}

/// Splits a structured value at unescaped `sep`, unescaping each part.
fn split(v: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push('\\');
                    cur.push(n);
                }
            }
            c if c == sep => parts.push(unesc(&std::mem::take(&mut cur))),
            c => cur.push(c),
        }
    }
    parts.push(unesc(&cur));
    parts
}

/// RFC 6350 3.4: `\n` `\N` a line break, `\,` `\;` `\\` the character.
fn unesc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Writes `line` with CRLF, folded at [`FOLD_AT`] octets, never inside a
/// character.
fn fold(out: &mut String, line: &str) {
    let mut rest = line;
    let mut width = FOLD_AT;
    while rest.len() > width {
        let mut cut = width;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        // The leading space counts.
        width = FOLD_AT - 1;
    }
    out.push_str(rest);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Contact> {
        super::super::outlook::tests::sample()
    }

    #[test]
    fn round_trip_in_3_and_4() {
        for v in [Version::V3, Version::V4] {
            let mut list = sample();
            list[0].id = "abc123".into();
            list[1]
                .emails
                .extend((0..5).map(|i| format!("more{i}@example.com")));
            let text = write_all(&list, v);
            for l in text.split("\r\n") {
                assert!(l.len() <= FOLD_AT, "{l:?}");
            }
            assert_eq!(parse_all(&text).unwrap(), list, "{v:?}\n{text}");
        }
        let four = write(&sample()[0], Version::V4);
        assert!(four.contains("BDAY:19800229\r\n"), "{four}");
        assert!(four.contains("EMAIL;PREF=1:zhang.san@example.cn\r\n"));
        assert!(four.contains("N:张;三;;;\r\n"));
    }

    #[test]
    fn other_programs_cards_read() {
        // Apple-style groups, folding inside a word, 2.1 quoted-printable.
        let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Lee;Ann;;;\r\nFN:Ann Lee\r\n\
                    item1.EMAIL;type=INTERNET;type=pref:ann@exa\r\n mple.com\r\n\
                    TEL;type=CELL;type=VOICE:+1 555\r\nEND:VCARD\r\n\
                    BEGIN:VCARD\nVERSION:2.1\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E5=BC=A0;=E4=B8=89\n\
                    EMAIL;INTERNET:zs@x.cn\nEND:VCARD\n";
        let l = parse_all(text).unwrap();
        assert_eq!(l[0].emails, ["ann@example.com"]);
        assert_eq!(l[0].mobile, "+1 555");
        assert_eq!(l[1].full_name, "张三");
    }

    #[test]
    fn outlooks_own_vcard_in_gb2312_reads() {
        // Outlook writes vCard 2.1, Chinese in quoted-printable GB2312.
        let l = import(include_bytes!(
            "../../tests/data/contacts/outlook-2.1-gb2312.vcf"
        ))
        .unwrap();
        let c = &l[0];
        assert_eq!(c.full_name, "张三");
        assert_eq!((c.family.as_str(), c.given.as_str()), ("张", "三"));
        assert_eq!(c.company, "北京某某科技有限公司");
        assert_eq!(c.work_address.street, "中关村大街1号");
        assert_eq!(c.work_address.country, "中国");
        assert_eq!(c.mobile, "13800000001");
        assert_eq!(c.work_phone, "010-12345678");
        assert_eq!(c.emails, ["zhangsan@example.cn"]);
    }

    #[test]
    fn cards_without_name_or_email_or_end_are_refused() {
        let no_mail = "BEGIN:VCARD\nVERSION:4.0\nFN:X\nEND:VCARD\n";
        assert_eq!(
            parse_all(no_mail),
            Err(ImportError::Card {
                number: 1,
                why: "email"
            })
        );
        let no_name = "BEGIN:VCARD\nVERSION:4.0\nFN:A\nEMAIL:a@x\nEND:VCARD\nBEGIN:VCARD\nEMAIL:b@x\nEND:VCARD\n";
        assert_eq!(
            parse_all(no_name),
            Err(ImportError::Card {
                number: 2,
                why: "name"
            })
        );
        assert!(matches!(
            parse_all("BEGIN:VCARD\nFN:A\nEMAIL:a@x\n"),
            Err(ImportError::Card { number: 1, .. })
        ));
        assert_eq!(parse_all("hello"), Err(ImportError::Empty));
    }
}
