//! Outlook's contact CSV ("Comma Separated Values" export of Outlook for
//! Windows): 92 columns in a fixed order, headed in the language of the
//! Outlook that wrote it. We read the English and the Simplified Chinese
//! heading sets (by name, so the columns may come in any order and other
//! programs' subsets such as Gmail's "Outlook CSV" also read), and write
//! either set in Outlook's order: the English one in UTF-8 with a BOM, the
//! Chinese one in GBK (GB18030 for the few characters GBK lacks), which is
//! what Outlook on a Chinese Windows reads and writes.
//!
//! Outlook holds three e-mail addresses and up to three street lines per
//! address; a contact with more loses the rest in this format (vCard keeps
//! them).

use super::csv;
use super::{Address, Contact, ImportError, MAX_CONTACTS};

/// Which heading set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headings {
    English,
    Chinese,
}

/// Outlook's English headings, in its order.
pub const ENGLISH: [&str; 92] = [
    "Title",
    "First Name",
    "Middle Name",
    "Last Name",
    "Suffix",
    "Company",
    "Department",
    "Job Title",
    "Business Street",
    "Business Street 2",
    "Business Street 3",
    "Business City",
    "Business State",
    "Business Postal Code",
    "Business Country/Region",
    "Home Street",
    "Home Street 2",
    "Home Street 3",
    "Home City",
    "Home State",
    "Home Postal Code",
    "Home Country/Region",
    "Other Street",
    "Other Street 2",
    "Other Street 3",
    "Other City",
    "Other State",
    "Other Postal Code",
    "Other Country/Region",
    "Assistant's Phone",
    "Business Fax",
    "Business Phone",
    "Business Phone 2",
    "Callback",
    "Car Phone",
    "Company Main Phone",
    "Home Fax",
    "Home Phone",
    "Home Phone 2",
    "ISDN",
    "Mobile Phone",
    "Other Fax",
    "Other Phone",
    "Pager",
    "Primary Phone",
    "Radio Phone",
    "TTY/TDD Phone",
    "Telex",
    "Account",
    "Anniversary",
    "Assistant's Name",
    "Billing Information",
    "Birthday",
    "Business Address PO Box",
    "Categories",
    "Children",
    "Directory Server",
    "E-mail Address",
    "E-mail Type",
    "E-mail Display Name",
    "E-mail 2 Address",
    "E-mail 2 Type",
    "E-mail 2 Display Name",
    "E-mail 3 Address",
    "E-mail 3 Type",
    "E-mail 3 Display Name",
    "Gender",
    "Government ID Number",
    "Hobby",
    "Home Address PO Box",
    "Initials",
    "Internet Free Busy",
    "Keywords",
    "Language",
    "Location",
    "Manager's Name",
    "Mileage",
    "Notes",
    "Office Location",
    "Organizational ID Number",
    "Other Address PO Box",
    "Priority",
    "Private",
    "Profession",
    "Referred By",
    "Sensitivity",
    "Spouse",
    "User 1",
    "User 2",
    "User 3",
    "User 4",
    "Web Page",
];

/// Simplified Chinese Outlook's headings, in its order.
pub const CHINESE: [&str; 92] = [
    "英文称谓",
    "名",
    "中间名",
    "姓",
    "中文称谓",
    "单位",
    "部门",
    "职务",
    "商务地址 街道",
    "商务地址 街道 2",
    "商务地址 街道 3",
    "商务地址 市/县",
    "商务地址 省/市/自治区",
    "商务地址 邮政编码",
    "商务地址 国家/地区",
    "住宅地址 街道",
    "住宅地址 街道 2",
    "住宅地址 街道 3",
    "住宅地址 市/县",
    "住宅地址 省/市/自治区",
    "住宅地址 邮政编码",
    "住宅地址 国家/地区",
    "其他地址 街道",
    "其他地址 街道 2",
    "其他地址 街道 3",
    "其他地址 市/县",
    "其他地址 省/市/自治区",
    "其他地址 邮政编码",
    "其他地址 国家/地区",
    "助理的电话",
    "商务传真",
    "商务电话",
    "商务电话 2",
    "回电话",
    "车载电话",
    "单位主要电话",
    "住宅传真",
    "住宅电话",
    "住宅电话 2",
    "ISDN",
    "移动电话",
    "其他传真",
    "其他电话",
    "寻呼机",
    "主要电话",
    "无绳电话",
    "TTY/TDD 电话",
    "电报",
    "Internet 忙闲",
    "办公地点",
    "地点",
    "电子邮件地址",
    "电子邮件类型",
    "电子邮件显示名称",
    "电子邮件 2 地址",
    "电子邮件 2 类型",
    "电子邮件 2 显示名",
    "电子邮件 3 地址",
    "电子邮件 3 类型",
    "电子邮件 3 显示名",
    "附注",
    "工作证号码",
    "关键词",
    "记帐信息",
    "纪念日",
    "经理姓名",
    "类别",
    "里程",
    "敏感度",
    "目录服务器",
    "配偶",
    "其他地址 - 邮箱",
    "商务地址 - 邮箱",
    "身份证编号",
    "生日",
    "私有",
    "缩写",
    "网页",
    "性别",
    "业余爱好",
    "引用者",
    "用户 1",
    "用户 2",
    "用户 3",
    "用户 4",
    "优先级",
    "语言",
    "帐户",
    "职业",
    "助理的姓名",
    "住宅地址 - 邮箱",
    "子女",
];

/// The columns we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Prefix,
    Given,
    Middle,
    Family,
    Suffix,
    Company,
    Department,
    JobTitle,
    Street(Which, u8),
    City(Which),
    Region(Which),
    Postcode(Which),
    Country(Which),
    WorkPhone,
    HomePhone,
    Mobile,
    Birthday,
    Categories,
    Email(u8),
    EmailType(u8),
    DisplayName,
    Notes,
    Web,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Work,
    Home,
}

/// (column, English heading, Chinese heading).
const COLUMNS: &[(Col, &str, &str)] = &[
    (Col::Prefix, "Title", "英文称谓"),
    (Col::Given, "First Name", "名"),
    (Col::Middle, "Middle Name", "中间名"),
    (Col::Family, "Last Name", "姓"),
    (Col::Suffix, "Suffix", "中文称谓"),
    (Col::Company, "Company", "单位"),
    (Col::Department, "Department", "部门"),
    (Col::JobTitle, "Job Title", "职务"),
    (
        Col::Street(Which::Work, 0),
        "Business Street",
        "商务地址 街道",
    ),
    (
        Col::Street(Which::Work, 1),
        "Business Street 2",
        "商务地址 街道 2",
    ),
    (
        Col::Street(Which::Work, 2),
        "Business Street 3",
        "商务地址 街道 3",
    ),
    (Col::City(Which::Work), "Business City", "商务地址 市/县"),
    (
        Col::Region(Which::Work),
        "Business State",
        "商务地址 省/市/自治区",
    ),
    (
        Col::Postcode(Which::Work),
        "Business Postal Code",
        "商务地址 邮政编码",
    ),
    (
        Col::Country(Which::Work),
        "Business Country/Region",
        "商务地址 国家/地区",
    ),
    (Col::Street(Which::Home, 0), "Home Street", "住宅地址 街道"),
    (
        Col::Street(Which::Home, 1),
        "Home Street 2",
        "住宅地址 街道 2",
    ),
    (
        Col::Street(Which::Home, 2),
        "Home Street 3",
        "住宅地址 街道 3",
    ),
    (Col::City(Which::Home), "Home City", "住宅地址 市/县"),
    (
        Col::Region(Which::Home),
        "Home State",
        "住宅地址 省/市/自治区",
    ),
    (
        Col::Postcode(Which::Home),
        "Home Postal Code",
        "住宅地址 邮政编码",
    ),
    (
        Col::Country(Which::Home),
        "Home Country/Region",
        "住宅地址 国家/地区",
    ),
    (Col::WorkPhone, "Business Phone", "商务电话"),
    (Col::HomePhone, "Home Phone", "住宅电话"),
    (Col::Mobile, "Mobile Phone", "移动电话"),
    (Col::Birthday, "Birthday", "生日"),
    (Col::Categories, "Categories", "类别"),
    (Col::Email(0), "E-mail Address", "电子邮件地址"),
    (Col::EmailType(0), "E-mail Type", "电子邮件类型"),
    (Col::DisplayName, "E-mail Display Name", "电子邮件显示名称"),
    (Col::Email(1), "E-mail 2 Address", "电子邮件 2 地址"),
    (Col::EmailType(1), "E-mail 2 Type", "电子邮件 2 类型"),
    (Col::Email(2), "E-mail 3 Address", "电子邮件 3 地址"),
    (Col::EmailType(2), "E-mail 3 Type", "电子邮件 3 类型"),
    (Col::Notes, "Notes", "附注"),
    (Col::Web, "Web Page", "网页"),
];

/// Headings other programs write for the same columns (Gmail's and
/// Windows Contacts' "Outlook CSV", older Outlooks).
const ALIASES: &[(&str, &str)] = &[
    ("Business Country", "Business Country/Region"),
    ("Home Country", "Home Country/Region"),
    ("E-mail Address 2", "E-mail 2 Address"),
    ("E-mail Address 3", "E-mail 3 Address"),
    ("称谓", "中文称谓"),
    ("公司", "单位"),
    ("备注", "附注"),
    ("住宅电话2", "住宅电话 2"),
];

/// Outlook's values for the columns we do not carry, as it writes them
/// for a contact that has none.
fn filler(heading: &str) -> &'static str {
    match heading {
        "Anniversary" | "Birthday" => "0/0/00",
        "纪念日" | "生日" => "0/0/0",
        "Gender" => "Unspecified",
        "性别" => "未指定",
        "Priority" | "Sensitivity" => "Normal",
        "优先级" | "敏感度" => "普通",
        "Private" | "私有" => "False",
        _ => "",
    }
}

/// Reads an uploaded Outlook CSV file (any of the encodings `csv::decode`
/// knows). All or nothing: one bad record refuses the whole file.
pub fn import(bytes: &[u8]) -> Result<Vec<Contact>, ImportError> {
    let text = csv::decode(bytes)?;
    let records = csv::parse(&text)?;
    let Some((head, rows)) = records.split_first() else {
        return Err(ImportError::Empty);
    };
    let (cols, lang) = columns(head).ok_or(ImportError::Headings)?;
    if rows.len() > MAX_CONTACTS {
        return Err(ImportError::TooMany);
    }
    let mut out = Vec::new();
    for row in rows {
        let mut c = Contact::default();
        let mut emails: [String; 3] = Default::default();
        let mut streets: [[String; 3]; 2] = Default::default();
        let mut display = String::new();
        for (i, col) in cols.iter().enumerate() {
            let (Some(col), Some(v)) = (col, row.get(i)) else {
                continue;
            };
            let v = v.trim().to_string();
            match *col {
                Col::Prefix => c.prefix = v,
                Col::Given => c.given = v,
                Col::Middle => c.middle = v,
                Col::Family => c.family = v,
                Col::Suffix => c.suffix = v,
                Col::Company => c.company = v,
                Col::Department => c.department = v,
                Col::JobTitle => c.job_title = v,
                Col::Street(w, n) => streets[w as usize][n as usize] = v,
                Col::City(w) => address(&mut c, w).city = v,
                Col::Region(w) => address(&mut c, w).region = v,
                Col::Postcode(w) => address(&mut c, w).postcode = v,
                Col::Country(w) => address(&mut c, w).country = v,
                Col::WorkPhone => c.work_phone = v,
                Col::HomePhone => c.home_phone = v,
                Col::Mobile => c.mobile = v,
                Col::Birthday => c.birthday = birthday_in(&v, lang),
                Col::Categories => {
                    c.groups = v.split([';', '；']).map(|g| g.trim().to_string()).collect()
                }
                Col::Email(n) => emails[n as usize] = v,
                Col::EmailType(_) => {}
                Col::DisplayName => display = v,
                Col::Notes => c.note = v,
                Col::Web => c.web = v,
            }
        }
        for (w, lines) in [Which::Work, Which::Home].into_iter().zip(streets) {
            let lines: Vec<String> = lines.into_iter().filter(|l| !l.is_empty()).collect();
            address(&mut c, w).street = lines.join("\n");
        }
        c.emails = emails.to_vec();
        // Outlook shows "Name (address)"; the name is what we keep.
        if let Some(first) = c.emails.first().filter(|e| !e.is_empty()) {
            let tail = format!("({first})");
            if let Some(n) = display.strip_suffix(&tail) {
                display = n.trim().to_string();
            }
        }
        c.full_name = display;
        c.normalise();
        if c.full_name.is_empty() && c.emails.is_empty() {
            continue;
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(out)
}

/// Writes contacts as Outlook does, every column in its order, in the
/// encoding that language's Outlook reads.
pub fn export(list: &[Contact], lang: Headings) -> Vec<u8> {
    let heads: &[&str; 92] = match lang {
        Headings::English => &ENGLISH,
        Headings::Chinese => &CHINESE,
    };
    let mut text = String::new();
    csv::write_record(&mut text, heads);
    for c in list {
        let values: Vec<String> = heads
            .iter()
            .map(|h| match column(h, lang) {
                Some(col) => value(c, col, lang).unwrap_or_else(|| filler(h).to_string()),
                None => filler(h).to_string(),
            })
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        csv::write_record(&mut text, &refs);
    }
    match lang {
        Headings::English => {
            let mut b = b"\xEF\xBB\xBF".to_vec();
            b.extend_from_slice(text.as_bytes());
            b
        }
        Headings::Chinese => encoding_rs::GB18030.encode(&text).0.into_owned(),
    }
}

fn address(c: &mut Contact, w: Which) -> &mut Address {
    match w {
        Which::Work => &mut c.work_address,
        Which::Home => &mut c.home_address,
    }
}

fn address_ref(c: &Contact, w: Which) -> &Address {
    match w {
        Which::Work => &c.work_address,
        Which::Home => &c.home_address,
    }
}

/// A contact's value for a column, None for "what Outlook writes when
/// empty".
fn value(c: &Contact, col: Col, lang: Headings) -> Option<String> {
    let v = match col {
        Col::Prefix => c.prefix.clone(),
        Col::Given => c.given.clone(),
        Col::Middle => c.middle.clone(),
        Col::Family => c.family.clone(),
        Col::Suffix => c.suffix.clone(),
        Col::Company => c.company.clone(),
        Col::Department => c.department.clone(),
        Col::JobTitle => c.job_title.clone(),
        Col::Street(w, n) => {
            let lines: Vec<&str> = address_ref(c, w).street.split('\n').collect();
            match n {
                0 | 1 => lines.get(n as usize).unwrap_or(&"").to_string(),
                _ => lines.get(2..).map(|l| l.join("\n")).unwrap_or_default(),
            }
        }
        Col::City(w) => address_ref(c, w).city.clone(),
        Col::Region(w) => address_ref(c, w).region.clone(),
        Col::Postcode(w) => address_ref(c, w).postcode.clone(),
        Col::Country(w) => address_ref(c, w).country.clone(),
        Col::WorkPhone => c.work_phone.clone(),
        Col::HomePhone => c.home_phone.clone(),
        Col::Mobile => c.mobile.clone(),
        Col::Birthday => birthday_out(&c.birthday, lang)?,
        Col::Categories => c.groups.join(";"),
        Col::Email(n) => c.emails.get(n as usize).cloned().unwrap_or_default(),
        Col::EmailType(n) => {
            if c.emails.get(n as usize).is_some() {
                "SMTP".into()
            } else {
                String::new()
            }
        }
        Col::DisplayName => {
            if c.full_name.is_empty() || c.emails.is_empty() {
                String::new()
            } else {
                c.full_name.clone()
            }
        }
        Col::Notes => c.note.clone(),
        Col::Web => c.web.clone(),
    };
    Some(v)
}

/// The columns of a heading row, and its language; None when it names
/// none of the columns we need (a name or an address).
fn columns(head: &[String]) -> Option<(Vec<Option<Col>>, Headings)> {
    for lang in [Headings::English, Headings::Chinese] {
        let cols: Vec<Option<Col>> = head
            .iter()
            .map(|h| column(h.trim().trim_start_matches('\u{feff}'), lang))
            .collect();
        let useful = cols.iter().flatten().any(|c| {
            matches!(
                c,
                Col::Given | Col::Family | Col::Email(0) | Col::DisplayName
            )
        });
        if useful {
            return Some((cols, lang));
        }
    }
    None
}

fn column(heading: &str, lang: Headings) -> Option<Col> {
    let find = |h: &str| {
        COLUMNS.iter().find_map(|(col, en, zh)| {
            let name = match lang {
                Headings::English => en,
                Headings::Chinese => zh,
            };
            name.eq_ignore_ascii_case(h).then_some(*col)
        })
    };
    find(heading).or_else(|| {
        ALIASES
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(heading))
            .and_then(|(_, h)| find(h))
    })
}

/// Outlook's birthday (English `2/29/1980`, Chinese `1980/2/29`, empty
/// `0/0/00`) as `1980-02-29`; anything else kept as written.
fn birthday_in(v: &str, lang: Headings) -> String {
    let parts: Vec<&str> = v.split('/').collect();
    let nums: Option<Vec<u32>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    match nums.as_deref() {
        Some([a, b, c]) if *a == 0 || *b == 0 || *c == 0 => String::new(),
        Some([m, d, y]) if lang == Headings::English && *y >= 1000 => {
            format!("{y:04}-{m:02}-{d:02}")
        }
        Some([y, m, d]) if *y >= 1000 => format!("{y:04}-{m:02}-{d:02}"),
        Some([m, d, y]) if *y >= 1000 => format!("{y:04}-{m:02}-{d:02}"),
        _ => v.to_string(),
    }
}

/// `1980-02-29` as Outlook writes it; None (Outlook's empty value) when
/// there is none; anything not a date as it is.
fn birthday_out(v: &str, lang: Headings) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let nums: Option<Vec<u32>> = v.split('-').map(|p| p.parse().ok()).collect();
    Some(match (nums.as_deref(), lang) {
        (Some([y, m, d]), Headings::English) => format!("{m}/{d}/{y}"),
        (Some([y, m, d]), Headings::Chinese) => format!("{y}/{m}/{d}"),
        _ => v.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Vec<Contact> {
        let mut a = Contact {
            given: "三".into(),
            family: "张".into(),
            emails: vec!["zhang.san@example.cn".into(), "zs@home.example".into()],
            mobile: "+86 138 0000 0000".into(),
            company: "北京某某科技有限公司".into(),
            department: "研发部".into(),
            job_title: "工程师".into(),
            work_address: Address {
                street: "中关村大街1号\n3层".into(),
                city: "北京".into(),
                region: "北京市".into(),
                postcode: "100080".into(),
                country: "中国".into(),
            },
            birthday: "1980-02-29".into(),
            note: "第一行\n第二行, \"引号\"".into(),
            groups: vec!["同事".into(), "Friends".into()],
            ..Contact::default()
        };
        a.normalise();
        let mut b = Contact {
            full_name: "John Q. Public".into(),
            given: "John".into(),
            middle: "Q.".into(),
            family: "Public".into(),
            prefix: "Dr.".into(),
            suffix: "Jr.".into(),
            emails: vec!["john@example.com".into()],
            work_phone: "+1 555 0100".into(),
            home_phone: "+1 555 0199".into(),
            web: "https://example.com/~john".into(),
            home_address: Address {
                street: "1 Main St".into(),
                city: "Springfield".into(),
                ..Address::default()
            },
            ..Contact::default()
        };
        b.normalise();
        vec![a, b]
    }

    #[test]
    fn round_trip_in_both_heading_sets() {
        for lang in [Headings::English, Headings::Chinese] {
            let bytes = export(&sample(), lang);
            let back = import(&bytes).unwrap();
            assert_eq!(back, sample(), "{lang:?}");
        }
        let zh = export(&sample(), Headings::Chinese);
        assert!(std::str::from_utf8(&zh).is_err(), "GBK, not UTF-8");
        let (text, _, bad) = encoding_rs::GBK.decode(&zh);
        assert!(!bad);
        assert!(text.starts_with("\"英文称谓\",\"名\",\"中间名\",\"姓\""));
        let en = export(&sample(), Headings::English);
        assert!(en.starts_with(b"\xEF\xBB\xBF\"Title\",\"First Name\""));
    }

    #[test]
    fn headings_are_outlooks() {
        // The Chinese Outlook orders its columns differently after the
        // phone numbers; each of ours is in both sets, once.
        for (col, en, zh) in COLUMNS {
            assert_eq!(ENGLISH.iter().filter(|h| *h == en).count(), 1, "{col:?}");
            assert_eq!(CHINESE.iter().filter(|h| *h == zh).count(), 1, "{col:?}");
        }
        for set in [&ENGLISH, &CHINESE] {
            let mut s = set.to_vec();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), 92);
        }
    }

    #[test]
    fn bad_files_are_refused_whole() {
        assert_eq!(import(b""), Err(ImportError::Empty));
        assert_eq!(import(b"Foo,Bar\n1,2\n"), Err(ImportError::Headings));
        assert_eq!(
            import(b"First Name,E-mail Address\n\"Ann,ann@x\n"),
            Err(ImportError::Quoting { line: 2 })
        );
        assert_eq!(import(b"\xFF\xFF\x00"), Err(ImportError::Encoding));
        let ok = import(b"First Name,Last Name,E-mail Address,Birthday\nAnn,Lee,ann@x,0/0/00\n")
            .unwrap();
        assert_eq!(ok[0].full_name, "Ann Lee");
        assert_eq!(ok[0].birthday, "");
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252
            .encode("First Name,Last Name,E-mail Address\nZoë,García,z@x.es\n");
        assert_eq!(import(&cp1252).unwrap()[0].full_name, "Zoë García");
        // English headings in GBK (an English Outlook on a Chinese
        // Windows) and in Big5.
        for enc in [encoding_rs::GBK, encoding_rs::BIG5] {
            let (b, _, _) =
                enc.encode("First Name,Last Name,E-mail Address,Categories\n大文,陳,c@x.hk,同事\n");
            let c = &import(&b).unwrap()[0];
            assert_eq!(
                (c.full_name.as_str(), c.groups[0].as_str()),
                ("陳大文", "同事")
            );
        }
        let (gbk, _, _) = encoding_rs::GBK
            .encode("名,姓,电子邮件地址,电子邮件显示名称\n三,张,z@x.cn,张三 (z@x.cn)\n");
        let zh = import(&gbk).unwrap();
        assert_eq!(zh[0].full_name, "张三");
        assert_eq!(zh[0].emails, ["z@x.cn"]);
    }
}
