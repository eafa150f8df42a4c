//! Decoding a message for display (lib/mime): what the webmail pays per
//! message page besides IMAP. Not a test: it asserts nothing about time, it
//! prints what it measured.
//!
//!   cargo bench --bench mime
//!
//! A dense 100 KB HTML message (a table of 700 rows, each with a styled
//! cell, a link, a cid image and a remote image: about 5,000 elements) in
//! GB2312, once with its charset declared and once without (so chardetng
//! guesses), the same with the HTML only surveyed (the message page's
//! view, whose frame sanitises), and 136 KB of plain text through
//! `text_to_html`. Per run: the
//! median wall time and the CPU time of the whole loop divided by the runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kmpromail::mime;

const RUNS: u32 = 200;

/// CPU time of this process (user + system), from /proc where there is one.
fn cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// `cargo bench --bench mime -- WORDS` measures only the cases whose name
/// holds WORDS (for a profiler).
fn measure(name: &str, mut f: impl FnMut()) {
    if let Some(only) = std::env::args().nth(1).filter(|a| !a.starts_with('-')) {
        if !name.contains(&only) {
            return;
        }
    }
    let mut walls = Vec::with_capacity(RUNS as usize);
    let c0 = cpu();
    for _ in 0..RUNS {
        let t = Instant::now();
        f();
        walls.push(t.elapsed());
    }
    walls.sort();
    let cpu = match (c0, cpu()) {
        (Some(a), Some(b)) => format!("{:?}", (b - a) / RUNS),
        _ => "-".into(),
    };
    println!(
        "{name:<28} p50 {:>10?}  p99 {:>10?}  cpu/run {cpu}",
        walls[walls.len() / 2],
        walls[walls.len() * 99 / 100]
    );
}

fn main() {
    let mut html = String::from(
        "<html><head><style>p{color:red}</style></head><body bgcolor=\"#ffffff\"><table width=600>",
    );
    let mut i = 0;
    while html.len() < 100_000 {
        html.push_str(&format!(
            "<tr><td style=\"color:#333;font-family:Arial\"><p>第{i}段 这是一段中文内容 with \
             <a href=\"https://example.cn/{i}\">a link</a> and <b>bold</b></p>\
             <img src=\"cid:img{i}@x\"><img src=\"http://t.example/{i}.gif\"></td></tr>"
        ));
        i += 1;
    }
    html.push_str("</table></body></html>");
    let gb = encoding_rs::GB18030.encode(&html).0.into_owned();
    let message = |content_type: &str| {
        let mut m = format!(
            "From: =?gb2312?b?1cXI/Q==?= <z@example.cn>\r\nSubject: =?gb2312?b?u+HS6c2o1qo=?=\r\n\
             MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(&gb);
        m
    };
    let declared = message("text/html; charset=gb2312");
    let undeclared = message("text/html");
    let url = |s: &str| format!("/part/{s}");
    let opts = mime::ViewOptions {
        allow_remote: false,
        cid_url: &url,
        write_html: true,
    };
    // The message page's view: the HTML only surveyed (its frame sanitises it).
    let page = mime::ViewOptions {
        write_html: false,
        ..opts
    };
    println!("message: {} bytes", declared.len());
    measure("view, charset declared", || {
        black_box(mime::view(&declared, &opts));
    });
    measure("view, charset guessed", || {
        black_box(mime::view(&undeclared, &opts));
    });
    measure("view, HTML surveyed only", || {
        black_box(mime::view(&declared, &page));
    });
    measure("decode gb2312 only", || {
        black_box(mime::decode(&gb, Some("gb2312")));
    });
    // The 100 KB message bench/webmail.sh opens: 1,800 table rows.
    let rows: String = (0..1800)
        .map(|i| {
            format!("<tr><td style=\"color:#333\">row {i}</td><td><b>cell</b> text {i}</td></tr>\n")
        })
        .collect();
    let table = format!(
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><h1>BENCH-MARKER</h1><table>{rows}</table></body></html>"
    )
    .into_bytes();
    measure("view, webmail bench table", || {
        black_box(mime::view(&table, &opts));
    });
    let text = "这是一行中文文本 https://example.cn/path 和更多文字。\n".repeat(2000);
    measure("text_to_html 136 KB", || {
        black_box(mime::text_to_html(&text));
    });
}
