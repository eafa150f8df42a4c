//! Comma-separated values as Outlook reads and writes them (RFC 4180):
//! fields separated by commas, records by CRLF (a bare LF is accepted),
//! a field in double quotes may hold commas, line breaks and doubled
//! quotes. And the text's encoding: UTF-8 with or without a BOM, UTF-16
//! with a BOM, else the Windows "ANSI" code page Outlook writes in, which
//! the headings do not tell (an English Outlook on a Chinese Windows
//! writes GBK): GBK (GB18030) on a Chinese Windows, Big5 on a Taiwanese
//! one, Windows-1252 on a Western one, guessed from the bytes as Firefox
//! does (chardetng, through `mime::charset::detect`).

use super::ImportError;

/// Most fields in one record.
pub const MAX_FIELDS: usize = 300;

/// The text of an uploaded file: UTF-8 (BOM or not), UTF-16 with a BOM, or
/// GBK. Anything else, or text with control characters no address book
/// has, is [`ImportError::Encoding`].
pub fn decode(bytes: &[u8]) -> Result<String, ImportError> {
    let guess = crate::mime::charset::detect(bytes, None);
    // Only the code pages Outlook writes contacts in; a guess of another
    // (random bytes look like some legacy charset) is no encoding we know.
    let known = [
        encoding_rs::GB18030,
        encoding_rs::BIG5,
        encoding_rs::WINDOWS_1252,
        encoding_rs::UTF_8,
    ];
    let legacy = if known.contains(&guess) {
        guess
    } else if std::str::from_utf8(bytes).is_ok()
        || bytes.starts_with(b"\xFF\xFE")
        || bytes.starts_with(b"\xFE\xFF")
    {
        encoding_rs::GB18030
    } else {
        return Err(ImportError::Encoding);
    };
    decode_with(bytes, legacy)
}

/// [`decode`] with `legacy` for text that is neither UTF-8 nor UTF-16.
pub fn decode_with(
    bytes: &[u8],
    legacy: &'static encoding_rs::Encoding,
) -> Result<String, ImportError> {
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        std::str::from_utf8(rest)
            .map_err(|_| ImportError::Encoding)?
            .to_string()
    } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        let enc = if bytes[0] == 0xFF {
            encoding_rs::UTF_16LE
        } else {
            encoding_rs::UTF_16BE
        };
        let (s, bad) = enc.decode_without_bom_handling(&bytes[2..]);
        if bad {
            return Err(ImportError::Encoding);
        }
        s.into_owned()
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        s.to_string()
    } else {
        let (s, bad) = legacy.decode_without_bom_handling(bytes);
        if bad {
            return Err(ImportError::Encoding);
        }
        s.into_owned()
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
    {
        return Err(ImportError::Encoding);
    }
    Ok(text)
}

/// The records of `text`. A quote left open, or a quote inside a field
/// that did not start with one, is [`ImportError::Quoting`] with its line.
/// Empty lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, ImportError> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    // The line where the open quote started, while inside quotes.
    let mut quoted_from: Option<usize> = None;
    // Whether the current field was quoted (and closed).
    let mut was_quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        if let Some(start) = quoted_from {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted_from = None;
                    was_quoted = true;
                    let _ = start;
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                '\r' => {}
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted_from = Some(line);
                any = true;
            }
            '"' => return Err(ImportError::Quoting { line }),
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
                any = true;
                if record.len() > MAX_FIELDS {
                    return Err(ImportError::Quoting { line });
                }
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                was_quoted = false;
                any = false;
                line += 1;
            }
            c if was_quoted => {
                // Text after a closing quote: `"a"b`.
                let _ = c;
                return Err(ImportError::Quoting { line });
            }
            c => {
                field.push(c);
                any = true;
            }
        }
    }
    if let Some(start) = quoted_from {
        return Err(ImportError::Quoting { line: start });
    }
    if any || !field.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// One record as Outlook writes it: every field in quotes, CRLF after.
pub fn write_record(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(
            &f.replace('"', "\"\"")
                .replace("\r\n", "\n")
                .replace('\n', "\r\n"),
        );
        out.push('"');
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_with_quotes_commas_and_breaks() {
        let r = parse("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\r\nlines\",,x\n\n").unwrap();
        assert_eq!(
            r,
            vec![vec!["a", "b,c", "say \"hi\""], vec!["two\nlines", "", "x"],]
        );
        let mut out = String::new();
        write_record(&mut out, &["a", "b,c", "say \"hi\"", "two\nlines"]);
        assert_eq!(
            parse(&out).unwrap(),
            vec![vec!["a", "b,c", "say \"hi\"", "two\nlines"]]
        );
        assert_eq!(parse("a,b").unwrap(), vec![vec!["a", "b"]]);
        assert_eq!(parse("a,").unwrap(), vec![vec!["a", ""]]);
    }

    #[test]
    fn broken_quoting_names_its_line() {
        assert_eq!(
            parse("a,b\n\"open,c\nd\n"),
            Err(ImportError::Quoting { line: 2 })
        );
        assert_eq!(
            parse("a,b\nx\"y,z\n"),
            Err(ImportError::Quoting { line: 2 })
        );
        assert_eq!(parse("\"a\"b,c\n"), Err(ImportError::Quoting { line: 1 }));
    }

    #[test]
    fn encodings_utf8_bom_gbk_and_garbage() {
        assert_eq!(decode("名,姓".as_bytes()).unwrap(), "名,姓");
        assert_eq!(decode(b"\xEF\xBB\xBFa,b").unwrap(), "a,b");
        let (gbk, _, _) = encoding_rs::GBK.encode("张三,李四");
        assert_eq!(decode(&gbk).unwrap(), "张三,李四");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("名".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode(&utf16).unwrap(), "名");
        assert_eq!(decode(b"\x81\x20\xFF\xFF"), Err(ImportError::Encoding));
        assert_eq!(decode(b"a\x00b"), Err(ImportError::Encoding));
    }
}
