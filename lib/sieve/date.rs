//! Dates for the date and currentdate tests (RFC 5260): RFC 5322 Date
//! fields read, time zones applied, and the date parts extracted.

/// A moment and the zone it is shown in, in minutes east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub unix: i64,
    pub offset: i32,
}

/// "+0800" or "-0130" as minutes.
pub fn parse_zone(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 5 || !matches!(b[0], b'+' | b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let h: i32 = s[1..3].parse().ok()?;
    let m: i32 = s[3..5].parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    Some(if b[0] == b'-' {
        -(h * 60 + m)
    } else {
        h * 60 + m
    })
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// An RFC 5322 date-time (with the obsolete forms: two-digit years, zone
/// names); None when it cannot be read.
pub fn parse_date(s: &str) -> Option<Moment> {
    let s = match s.find(',') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    let mut w = s.split_whitespace();
    let day: i64 = w.next()?.parse().ok()?;
    let mon = w.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| mon.starts_with(m))? as i64 + 1;
    let ys = w.next()?;
    let mut year: i64 = ys.parse().ok()?;
    if ys.len() <= 2 {
        year += if year < 50 { 2000 } else { 1900 };
    } else if ys.len() == 3 {
        year += 1900;
    }
    let time = w.next()?;
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: i64 = match t.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if !(1..=9999).contains(&year) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let zone = w.next().unwrap_or("-0000");
    let offset = parse_zone(zone).or_else(|| {
        Some(match zone.to_ascii_uppercase().as_str() {
            "UT" | "GMT" | "Z" => 0,
            "EDT" => -4 * 60,
            "EST" | "CDT" => -5 * 60,
            "CST" | "MDT" => -6 * 60,
            "MST" | "PDT" => -7 * 60,
            "PST" => -8 * 60,
            _ => 0,
        })
    })?;
    let unix = days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + sec
        - i64::from(offset) * 60;
    Some(Moment { unix, offset })
}

fn zone_str(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    format!("{sign}{:02}{:02}", o / 60, o % 60)
}

/// One date part (RFC 5260 2.3) of a moment, in its zone.
pub fn part(m: Moment, name: &str) -> Option<String> {
    let local = m.unix + i64::from(m.offset) * 60;
    let days = local.div_euclid(86400);
    let secs = local.rem_euclid(86400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let z = zone_str(m.offset);
    Some(match name.to_ascii_lowercase().as_str() {
        "year" => format!("{y:04}"),
        "month" => format!("{mo:02}"),
        "day" => format!("{d:02}"),
        "date" => format!("{y:04}-{mo:02}-{d:02}"),
        "julian" => format!("{}", days + 40587),
        "hour" => format!("{h:02}"),
        "minute" => format!("{mi:02}"),
        "second" => format!("{s:02}"),
        "time" => format!("{h:02}:{mi:02}:{s:02}"),
        "iso8601" => format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}:{}",
            &z[..3],
            &z[3..]
        ),
        "std11" => format!(
            "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} {z}",
            DAYS[(days + 4).rem_euclid(7) as usize],
            capital(MONTHS[(mo - 1) as usize]),
        ),
        "zone" => z,
        "weekday" => format!("{}", (days + 4).rem_euclid(7)),
        _ => return None,
    })
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let m = parse_date("Tue, 1 Dec 2026 09:05:07 +0800").unwrap();
        assert_eq!(part(m, "date").unwrap(), "2026-12-01");
        assert_eq!(part(m, "time").unwrap(), "09:05:07");
        assert_eq!(part(m, "zone").unwrap(), "+0800");
        assert_eq!(part(m, "weekday").unwrap(), "2");
        let utc = Moment {
            unix: m.unix,
            offset: 0,
        };
        assert_eq!(part(utc, "hour").unwrap(), "01");
        assert_eq!(
            part(utc, "std11").unwrap(),
            "Tue, 01 Dec 2026 01:05:07 +0000"
        );
        assert_eq!(part(utc, "julian").unwrap(), "61375");
        let prev = Moment {
            unix: m.unix,
            offset: -600,
        };
        assert_eq!(part(prev, "day").unwrap(), "30");
        assert_eq!(part(prev, "iso8601").unwrap(), "2026-11-30T15:05:07-10:00");
        assert!(parse_date("garbage").is_none());
        assert!(parse_date("1 Jan 99999999999999999 00:00 GMT").is_none());
        assert_eq!(
            parse_date("1 Jan 99 00:00 GMT")
                .map(|m| part(m, "year").unwrap())
                .unwrap(),
            "1999"
        );
    }
}
