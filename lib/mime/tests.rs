//! The message corpus in tests/data/mail/, each mail decoded to its exact
//! text (tests/data/mail/README.md says what each one holds).

use super::*;

fn mail(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/mail/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn url(sec: &str) -> String {
    format!("/part/{sec}")
}

fn opts(allow_remote: bool) -> ViewOptions<'static> {
    ViewOptions {
        allow_remote,
        cid_url: &url,
    }
}

/// The view of a corpus mail, checked to be the same with CRLF line ends.
fn view_of(name: &str) -> View {
    let raw = mail(name);
    let v = view(&raw, &opts(false));
    let crlf = crate::imapd::message::to_crlf(&raw);
    let mut w = view(&crlf, &opts(false));
    // Only line ends inside bodies may differ.
    w.text = w.text.map(|t| t.replace("\r\n", "\n"));
    assert_eq!(v.subject, w.subject, "{name}");
    assert_eq!(v.text, w.text, "{name}");
    let names = |v: &View| -> Vec<(String, String, String)> {
        v.attachments
            .iter()
            .map(|a| (a.section.clone(), a.name.clone(), a.content_type.clone()))
            .collect()
    };
    assert_eq!(names(&v), names(&w), "{name}");
    v
}

#[test]
fn gb2312_label_with_gbk_characters() {
    let v = view_of("gb2312.eml");
    assert_eq!(v.subject, "会议通知");
    assert_eq!(v.from[0].name.as_deref(), Some("张三"));
    assert_eq!(v.from[0].address, "zhangsan@example.cn");
    assert_eq!(
        v.text.as_deref(),
        Some("朱镕基和王堃参加了会议。\n会议通知：明天上午九点在三楼会议室。\n")
    );
    assert_eq!(v.date, Some(1_796_434_200));
    assert!(v.html.is_none() && v.attachments.is_empty());
}

#[test]
fn gbk_quoted_printable() {
    let v = view_of("gbk.eml");
    assert_eq!(v.subject, "GBK邮件测试");
    assert_eq!(
        v.text.as_deref(),
        Some("这是一封GBK编码的邮件，包含“镕”字与全角标点！\n")
    );
}

#[test]
fn gb18030_four_byte_sequences() {
    let v = view_of("gb18030.eml");
    assert_eq!(v.subject, "国标18030");
    assert_eq!(
        v.text.as_deref(),
        Some("GB18030 四字节字符：𠂇 以及 € 符号。\n")
    );
}

#[test]
fn big5() {
    let v = view_of("big5.eml");
    assert_eq!(v.subject, "會議通知");
    assert_eq!(v.from[0].name.as_deref(), Some("陳大文"));
    assert_eq!(
        v.text.as_deref(),
        Some("您好，這是一封繁體中文郵件。\n請查收附件，謝謝！\n")
    );
}

#[test]
fn hz_gb_2312() {
    let v = view_of("hz.eml");
    assert_eq!(v.subject, "汉字标题");
    assert_eq!(v.text.as_deref(), Some("欢迎使用HZ编码。\n这是第二行。\n"));
}

#[test]
fn utf7() {
    let v = view_of("utf7.eml");
    assert_eq!(v.subject, "日本語と中文");
    assert_eq!(v.text.as_deref(), Some("UTF-7 中文：你好，世界！ 1+1=2\n"));
}

#[test]
fn iso_2022_jp() {
    let v = view_of("iso-2022-jp.eml");
    assert_eq!(v.subject, "日本語の件名");
    assert_eq!(
        v.text.as_deref(),
        Some("こんにちは、日本語のメールです。\n")
    );
}

#[test]
fn latin1_and_windows_1252() {
    let v = view_of("iso-8859-1.eml");
    assert_eq!(v.subject, "Café");
    assert_eq!(v.from[0].name.as_deref(), Some("François"));
    assert_eq!(
        v.text.as_deref(),
        Some("Café crème à la française, déjà vu.\n")
    );
    let v = view_of("windows-1252.eml");
    assert_eq!(v.subject, "“Quotes” €");
    assert_eq!(
        v.text.as_deref(),
        Some("“Smart quotes” – and the € sign…\n")
    );
}

#[test]
fn undeclared_gbk_body_and_8bit_headers() {
    let v = view_of("undeclared-gbk.eml");
    assert_eq!(v.subject, "无字符集声明的邮件");
    assert_eq!(v.from[0].name.as_deref(), Some("李四"));
    assert_eq!(
        v.text.as_deref(),
        Some("您好，这是一封没有声明字符集的中文邮件，请查收附件。谢谢！\n祝工作顺利。\n")
    );
}

#[test]
fn wrong_declared_charset_is_detected() {
    let v = view_of("wrong-charset.eml");
    assert_eq!(
        v.text.as_deref(),
        Some("您好，這是一封標錯字符集的繁體中文郵件，請查收。謝謝！\n")
    );
}

#[test]
fn attachment_names_rfc2231_rfc2047_raw() {
    let v = view_of("rfc2231-attachment.eml");
    assert_eq!(v.subject, "附件名测试");
    assert_eq!(v.text.as_deref(), Some("请看附件。\n"));
    let names: Vec<(&str, &str, &str)> = v
        .attachments
        .iter()
        .map(|a| (a.section.as_str(), a.name.as_str(), a.content_type.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("2", "季度销售报告（最终版）.pdf", "application/pdf"),
            ("3", "数据.xls", "application/vnd.ms-excel"),
            ("4", "合同草案.doc", "application/msword"),
            ("5", "说明.txt", "text/plain"),
        ]
    );
    assert_eq!(v.attachments[0].size, 293);
    assert_eq!(v.attachments[1].size, 9);
    assert!(v.attachments.iter().all(|a| !a.inline));
    let p = part(&mail("rfc2231-attachment.eml"), "2").expect("part 2");
    assert_eq!(p.name.as_deref(), Some("季度销售报告（最终版）.pdf"));
    assert!(p.bytes.starts_with(b"%PDF-1.4\n") && p.bytes.ends_with(b"%%EOF\n"));
    assert_eq!(
        content_disposition("attachment", &v.attachments[0].name),
        "attachment; filename=\"___________.pdf\"; filename*=UTF-8''%E5%AD%A3%E5%BA%A6%E9%94%80%E5%94%AE%E6%8A%A5%E5%91%8A%EF%BC%88%E6%9C%80%E7%BB%88%E7%89%88%EF%BC%89.pdf"
    );
    let p = part(&mail("rfc2231-attachment.eml"), "5").expect("part 5");
    assert_eq!(p.bytes, encoding_rs::GB18030.encode("说明文字").0.as_ref());
}

#[test]
fn rfc2047_names_in_address_lists() {
    let v = view_of("rfc2047-names.eml");
    let show = |l: &[Mailbox]| -> Vec<(Option<String>, String)> {
        l.iter()
            .map(|m| (m.name.clone(), m.address.clone()))
            .collect()
    };
    assert_eq!(v.subject, "长标题的第一部分，第二部分");
    assert_eq!(
        show(&v.from),
        [(Some("王五".into()), "wangwu@example.cn".into())]
    );
    assert_eq!(
        show(&v.to),
        [
            (Some("赵六".into()), "zhao@example.cn".into()),
            (Some("Li, Lei".into()), "lilei@example.com".into()),
            (Some("甲".into()), "a@example.cn".into()),
            (Some("Bob".into()), "b@example.cn".into()),
        ]
    );
    assert_eq!(
        show(&v.cc),
        [(Some("臺灣同事".into()), "tw@example.tw".into())]
    );
    assert_eq!(
        show(&v.reply_to),
        [(Some("回复地址".into()), "reply@example.cn".into())]
    );
    assert_eq!(v.priority, Some(1));
    assert_eq!(v.message_id.as_deref(), Some("names@example.cn"));
    assert_eq!(
        v.date_text.as_deref(),
        Some("Sat, 05 Dec 2026 11:00:00 +0800")
    );
}

#[test]
fn related_html_with_cid_image() {
    let raw = mail("related-cid.eml");
    let v = view_of("related-cid.eml");
    assert_eq!(v.subject, "带图片的邮件");
    assert_eq!(v.text.as_deref(), Some("图片如下：[logo]\n"));
    let h = v.html.expect("html");
    assert!(
        h.body.contains("<p style=\"color:#336699\">图片如下：</p>"),
        "{}",
        h.body
    );
    assert!(
        h.body.contains("<img src=\"/part/2.2\" alt=\"logo\">"),
        "{}",
        h.body
    );
    assert!(
        !h.body.contains("tracker") && !h.body.contains("color:red"),
        "{}",
        h.body
    );
    assert_eq!(h.blocked_remote, 1);
    // The used cid image is not an attachment; the unused one is.
    assert_eq!(v.attachments.len(), 1, "{:?}", v.attachments);
    assert_eq!(v.attachments[0].section, "2.3");
    assert_eq!(
        v.attachments[0].content_id.as_deref(),
        Some("unused@example.cn")
    );
    assert!(v.attachments[0].inline);
    assert_eq!(v.attachments[0].name, "part-2.3.png");
    let p = part(&raw, "2.2").expect("image");
    assert_eq!(p.content_type, "image/png");
    assert!(p.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    let allowed = view(&raw, &opts(true)).html.expect("html");
    assert_eq!(allowed.blocked_remote, 0);
    assert!(allowed
        .body
        .contains("src=\"http://tracker.example/pixel.gif\""));
}

#[test]
fn alternative_gb2312() {
    let v = view_of("alternative.eml");
    assert_eq!(v.subject, "纯文本与网页");
    assert_eq!(v.text.as_deref(), Some("这是纯文本部分。\n"));
    let h = v.html.expect("html").body;
    assert!(h.contains("这是<b>网页</b>部分。"), "{h}");
    assert!(h.contains("href=\"https://example.cn/\""), "{h}");
    assert!(!h.contains("script") && !h.contains("alert"), "{h}");
}

#[test]
fn nested_message_is_an_attachment() {
    let v = view_of("nested-rfc822.eml");
    assert_eq!(v.text.as_deref(), Some("请看下面转发的邮件。\n"));
    assert_eq!(v.attachments.len(), 1);
    let a = &v.attachments[0];
    assert_eq!(
        (a.section.as_str(), a.content_type.as_str()),
        ("2", "message/rfc822")
    );
    assert_eq!(a.name, "转发的原邮件.eml");
    let p = part(&mail("nested-rfc822.eml"), "2").expect("message");
    let inner = view(&p.bytes, &opts(false));
    assert_eq!(inner.subject, "转发的原邮件");
    assert_eq!(inner.text.as_deref(), Some("原邮件正文。\n"));
    // IMAP numbering inside the message: 2.1 is its body.
    assert_eq!(
        part(&mail("nested-rfc822.eml"), "2.1").map(|p| p.bytes),
        Some(encoding_rs::GB18030.encode("原邮件正文。\n").0.into_owned())
    );
}

#[test]
fn base64_attachment_bytes() {
    let raw = mail("base64-attachment.eml");
    let v = view_of("base64-attachment.eml");
    assert_eq!(v.text.as_deref(), Some("See attached.\n"));
    let a = &v.attachments[0];
    assert_eq!(
        (a.section.as_str(), a.name.as_str(), a.size),
        ("2", "data.bin", 3000)
    );
    let want: Vec<u8> = (0..3000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    assert_eq!(part(&raw, "2").map(|p| p.bytes), Some(want));
    for bad in ["", "0", "3", "2.5", "x", "1..2", "-1", "99999999"] {
        assert!(part(&raw, bad).is_none(), "{bad}");
    }
}

#[test]
fn garbage_never_panics() {
    let v = view(b"", &opts(false));
    assert_eq!(v.subject, "");
    let v = view(b"Subject: x\n\nbody", &opts(false));
    assert_eq!(v.text.as_deref(), Some("body"));
    for junk in [
        &b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x--"[..],
        b"\xff\xfe\x00",
        b"Content-Type: text/html\n\n<",
        b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n",
    ] {
        let _ = view(junk, &opts(false));
        let _ = part(junk, "1");
    }
}
