//! The rows of a MySQL dump's `INSERT ... VALUES` (for `kmpctl import
//! vpopmail-sql`): just enough SQL to read what mysqldump writes.

/// The rows of `VALUES (...),(...);`: each a list of fields, strings
/// unquoted and unescaped (`\'`, `''`, `\\`), NULL as "".
pub(super) fn rows(s: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            it.next();
        }
        match it.next() {
            None | Some(';') => return Ok(rows),
            Some('(') => {}
            Some(c) => return Err(format!("unexpected {c:?} between rows")),
        }
        let mut row = Vec::new();
        loop {
            while it.peek().is_some_and(|c| c.is_whitespace()) {
                it.next();
            }
            let mut field = String::new();
            if it.peek() == Some(&'\'') {
                it.next();
                loop {
                    match it.next() {
                        None => return Err("a string without its closing quote".into()),
                        Some('\\') => match it.next() {
                            Some('n') => field.push('\n'),
                            Some('0') => {}
                            Some(c) => field.push(c),
                            None => return Err("a string without its closing quote".into()),
                        },
                        Some('\'') if it.peek() == Some(&'\'') => {
                            it.next();
                            field.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => field.push(c),
                    }
                }
            } else {
                while let Some(c) = it.peek().copied() {
                    if c == ',' || c == ')' {
                        break;
                    }
                    field.push(c);
                    it.next();
                }
                let v = field.trim().to_string();
                field = if v.eq_ignore_ascii_case("NULL") {
                    String::new()
                } else {
                    v
                };
            }
            row.push(field);
            while it.peek().is_some_and(|c| c.is_whitespace()) {
                it.next();
            }
            match it.next() {
                Some(',') => continue,
                Some(')') => break,
                _ => return Err("a row without its closing )".into()),
            }
        }
        rows.push(row);
    }
}
