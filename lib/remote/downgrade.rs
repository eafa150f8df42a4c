//! The 7-bit downgrade (RFC 6152 section 3, RFC 1652) as a stream, so a
//! large message is never whole in memory: a first pass ([`Walker::scan`])
//! walks the MIME tree line by line and notes, for each entity in order,
//! whether its body holds 8-bit data (and whether the conversion is possible
//! at all); a second pass ([`Walker::emit`]) re-reads the message and writes
//! it out, rewriting only the entities the first pass marked: their header
//! gets the new Content-Transfer-Encoding, leaf bodies become
//! quoted-printable (RFC 2045 6.7), containers become `7bit`. Everything else
//! is copied byte for byte. What is kept between the passes is one bit per
//! entity.
//!
//! The tree is read as `body::downgrade` always read it: an entity ends at a
//! delimiter line of any enclosing multipart (the outermost that matches
//! wins), parts of a multipart/digest default to message/rfc822, nesting
//! deeper than [`MAX_DEPTH`] is not followed, and after a close delimiter the
//! epilogue runs to the end of the enclosing entity.
//!
//! Pure: bytes in, bytes out; no I/O.

use super::body::{field, fields, has_8bit, param, parse_content_type, trim_end, write_head};
use super::body::{DowngradeError, MAX_DEPTH};

/// Lines are handled in pieces of at most this many bytes: a longer line is
/// content (it cannot be a delimiter), passed on in pieces.
const MAX_SEGMENT: usize = 64 * 1024;

/// A header section past this size is not parsed further; an entity that
/// would need rewriting with such a header cannot be downgraded.
const MAX_HEAD: usize = 1024 * 1024;

/// Which entities the scan found to need rewriting: one bit each, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    bits: Vec<u64>,
}

impl Plan {
    fn set(&mut self, i: usize) {
        let w = i / 64;
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        self.bits[w] |= 1 << (i % 64);
    }

    fn get(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// What an entity turned out to be once its header was read.
enum Kind {
    /// Still in the header section.
    Head,
    /// A body that is not followed into (a leaf, or nesting too deep).
    Leaf { qp: Option<Qp> },
    /// `digest`: its parts default to message/rfc822 (multipart/digest).
    Multipart {
        delim: Vec<u8>,
        phase: Phase,
        digest: bool,
    },
    /// message/rfc822 or message/global: the child frame is above this one.
    Message,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preamble,
    Parts,
    Epilogue,
}

/// One entity being read.
struct Frame {
    index: usize,
    depth: usize,
    top: bool,
    digest: bool,
    /// Emit pass: this entity is rewritten (its body held 8-bit data).
    rewrite: bool,
    head: Vec<u8>,
    head_truncated: bool,
    head_8bit: bool,
    body_8bit: bool,
    preamble_8bit: bool,
    cte: String,
    kind: Kind,
}

impl Frame {
    fn new(index: usize, depth: usize, top: bool, digest: bool, rewrite: bool) -> Frame {
        Frame {
            index,
            depth,
            top,
            digest,
            rewrite,
            head: Vec::new(),
            head_truncated: false,
            head_8bit: false,
            body_8bit: false,
            preamble_8bit: false,
            cte: String::new(),
            kind: Kind::Head,
        }
    }
}

/// One pass over a message: fed in pieces of any size.
pub struct Walker {
    /// `None` on the scan pass; the plan to follow on the emit pass.
    follow: Option<Plan>,
    found: Plan,
    stack: Vec<Frame>,
    next_index: usize,
    error: Option<DowngradeError>,
    line: Vec<u8>,
    /// Whether `line` continues a line whose start was already handled.
    continued: bool,
}

impl Walker {
    /// The first pass: finds what needs rewriting and whether it can be.
    pub fn scan() -> Walker {
        Walker::new(None)
    }

    /// The second pass: writes the 7-bit message as `plan` says.
    pub fn emit(plan: Plan) -> Walker {
        Walker::new(Some(plan))
    }

    fn new(follow: Option<Plan>) -> Walker {
        let rewrite = follow.as_ref().is_some_and(|p| p.get(0));
        Walker {
            follow,
            found: Plan::default(),
            stack: vec![Frame::new(0, 0, true, false, rewrite)],
            next_index: 1,
            error: None,
            line: Vec::new(),
            continued: false,
        }
    }

    /// Takes the next piece of the message; output (emit pass) goes to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            let room = MAX_SEGMENT - self.line.len();
            let take = data.iter().take(room).position(|&b| b == b'\n');
            match take {
                Some(i) => {
                    self.line.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                    self.segment(true, out);
                }
                None if data.len() >= room => {
                    self.line.extend_from_slice(&data[..room]);
                    data = &data[room..];
                    self.segment(false, out);
                }
                None => {
                    self.line.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }

    /// Ends the message. The scan pass answers with its plan, or why the
    /// message cannot be made 7-bit; the emit pass with an empty plan.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Plan, DowngradeError> {
        if !self.line.is_empty() {
            self.segment(true, out);
        }
        while !self.stack.is_empty() {
            self.close_top(out);
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.found),
        }
    }

    /// Handles `self.line`: a whole line (`ends`) or a piece of a long one.
    fn segment(&mut self, ends: bool, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        let starts = !self.continued;
        self.continued = !ends;
        if starts && ends {
            if let Some(level) = self.delimiter_level(&line) {
                self.delimiter(level, &line, out);
                self.line = line;
                self.line.clear();
                return;
            }
        }
        let eight = has_8bit(&line);
        let n = self.stack.len();
        if eight {
            for f in &mut self.stack[..n.saturating_sub(1)] {
                f.body_8bit = true;
            }
        }
        if let Some(top) = self.stack.last_mut() {
            match &mut top.kind {
                Kind::Head => {
                    top.head_8bit |= eight;
                    if !top.rewrite && self.follow.is_some() {
                        out.extend_from_slice(&line);
                    }
                    if top.head.len() + line.len() <= MAX_HEAD {
                        top.head.extend_from_slice(&line);
                    } else {
                        top.head_truncated = true;
                    }
                    if starts && ends && line.as_slice() == b"\n" {
                        self.open_body(out);
                    }
                }
                Kind::Leaf { qp } => {
                    top.body_8bit |= eight;
                    if self.follow.is_some() {
                        match qp {
                            Some(q) => q.segment(&line, ends, out),
                            None => out.extend_from_slice(&line),
                        }
                    }
                }
                Kind::Multipart { phase, .. } => {
                    top.body_8bit |= eight;
                    if eight && *phase == Phase::Preamble {
                        top.preamble_8bit = true;
                    }
                    if eight && *phase == Phase::Epilogue && self.error.is_none() {
                        self.error = Some(DowngradeError::CannotEncode(
                            "8-bit data in a multipart epilogue".into(),
                        ));
                    }
                    if self.follow.is_some() {
                        out.extend_from_slice(&line);
                    }
                }
                // Invariant: a Message frame always has its child above it.
                Kind::Message => {}
            }
        }
        self.line = line;
        self.line.clear();
    }

    /// The stack level of the outermost multipart whose delimiter `line` is.
    fn delimiter_level(&self, line: &[u8]) -> Option<usize> {
        let trimmed = trim_end(line);
        self.stack.iter().position(|f| match &f.kind {
            Kind::Multipart { delim, phase, .. } if *phase != Phase::Epilogue => {
                trimmed.starts_with(delim) && {
                    let rest = &trimmed[delim.len()..];
                    rest.is_empty()
                        || rest == b"--"
                        || rest.iter().all(|b| *b == b' ' || *b == b'\t')
                }
            }
            _ => false,
        })
    }

    /// A delimiter of the multipart at `level`: the entities inside end.
    fn delimiter(&mut self, level: usize, line: &[u8], out: &mut Vec<u8>) {
        while self.stack.len() > level + 1 {
            self.close_top(out);
        }
        let eight = has_8bit(line);
        let mut push = None;
        {
            let follow = self.follow.is_some();
            let f = &mut self.stack[level];
            f.body_8bit |= eight;
            let Kind::Multipart {
                delim,
                phase,
                digest,
            } = &mut f.kind
            else {
                return;
            };
            if *phase == Phase::Preamble && f.preamble_8bit && self.error.is_none() {
                self.error = Some(DowngradeError::CannotEncode(
                    "8-bit data in a multipart preamble".into(),
                ));
            }
            if follow {
                out.extend_from_slice(line);
            }
            let trimmed = trim_end(line);
            if trimmed.ends_with(b"--") && trimmed.len() == delim.len() + 2 {
                *phase = Phase::Epilogue;
            } else {
                *phase = Phase::Parts;
                push = Some((f.depth + 1, *digest));
            }
        }
        if eight {
            for f in &mut self.stack[..level] {
                f.body_8bit = true;
            }
        }
        if let Some((depth, digest)) = push {
            self.push(depth, false, digest);
        }
    }

    fn push(&mut self, depth: usize, top: bool, digest: bool) {
        let index = self.next_index;
        self.next_index += 1;
        let rewrite = self.follow.as_ref().is_some_and(|p| p.get(index));
        self.stack
            .push(Frame::new(index, depth, top, digest, rewrite));
    }

    /// The header of the top frame is complete: decide what its body is.
    fn open_body(&mut self, out: &mut Vec<u8>) {
        let Some(f) = self.stack.last_mut() else {
            return;
        };
        let flds = fields(&f.head);
        let ctype = field(&flds, "content-type");
        f.cte = field(&flds, "content-transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let (mime_type, params) = match &ctype {
            Some(v) => parse_content_type(v),
            None if f.digest => ("message/rfc822".to_string(), Vec::new()),
            None => ("text/plain".to_string(), Vec::new()),
        };
        let emit = self.follow.is_some() && f.rewrite;
        let mut child = None;
        f.kind = if f.depth >= MAX_DEPTH {
            Kind::Leaf { qp: None }
        } else if let Some(boundary) =
            param(&params, "boundary").filter(|_| mime_type.starts_with("multipart/"))
        {
            if emit {
                write_head(&flds, f.top, Some("7bit"), ctype.is_none(), out);
            }
            Kind::Multipart {
                delim: format!("--{boundary}").into_bytes(),
                phase: Phase::Preamble,
                digest: mime_type == "multipart/digest",
            }
        } else if mime_type == "message/rfc822" || mime_type == "message/global" {
            if emit {
                write_head(&flds, f.top, Some("7bit"), ctype.is_none(), out);
            }
            child = Some(f.depth + 1);
            Kind::Message
        } else {
            if emit {
                write_head(&flds, f.top, Some("quoted-printable"), ctype.is_none(), out);
            }
            Kind::Leaf {
                qp: emit.then(Qp::default),
            }
        };
        if let Some(depth) = child {
            self.push(depth, false, false);
        }
    }

    /// The top frame ends: its verdict is noted (scan) and its output done.
    fn close_top(&mut self, out: &mut Vec<u8>) {
        let Some(mut f) = self.stack.pop() else {
            return;
        };
        if let Kind::Leaf { qp: Some(q) } = &mut f.kind {
            q.finish(out);
        }
        if f.head_8bit {
            self.fail(DowngradeError::HeaderNot7Bit);
        }
        if !f.body_8bit {
            return;
        }
        self.found.set(f.index);
        let why = if f.head_truncated {
            Some("a header section too large to rewrite".to_string())
        } else if f.depth >= MAX_DEPTH {
            Some("MIME nesting too deep".to_string())
        } else if f.cte == "binary" {
            Some("a part is declared binary".to_string())
        } else {
            match &f.kind {
                Kind::Multipart {
                    phase: Phase::Preamble,
                    ..
                } => Some("multipart body without its boundary".to_string()),
                Kind::Leaf { .. } if f.cte == "base64" || f.cte == "quoted-printable" => {
                    Some(format!("8-bit data in a part declared {}", f.cte))
                }
                _ => None,
            }
        };
        if let Some(why) = why {
            self.fail(DowngradeError::CannotEncode(why));
        }
    }

    fn fail(&mut self, e: DowngradeError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}

/// Quoted-printable of one body, fed line by line or in pieces of long
/// lines: LF line ends stay hard line breaks, lines are cut with soft breaks
/// to at most 76 characters, a space or tab before a line end is encoded.
#[derive(Default)]
struct Qp {
    col: usize,
    /// The last bytes of an unfinished line: whether they end it is not known yet.
    carry: Vec<u8>,
}

impl Qp {
    fn segment(&mut self, piece: &[u8], ends: bool, out: &mut Vec<u8>) {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(piece);
        if !ends {
            let keep = data.len().min(2);
            let (now, later) = data.split_at(data.len() - keep);
            self.bytes(now, false, out);
            self.carry = later.to_vec();
            return;
        }
        let (line, nl) = match data.strip_suffix(b"\n") {
            Some(l) => (l, true),
            None => (&data[..], false),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.bytes(line, true, out);
        if nl {
            out.push(b'\n');
        }
        self.col = 0;
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.carry.is_empty() {
            self.segment(&[], true, out);
        }
    }

    /// Encodes `line`; with `ends`, its last byte ends the line.
    fn bytes(&mut self, line: &[u8], ends: bool, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for (i, &b) in line.iter().enumerate() {
            let last = ends && i + 1 == line.len();
            let literal =
                (33..=126).contains(&b) && b != b'=' || (b == b' ' || b == b'\t') && !last;
            let width = if literal { 1 } else { 3 };
            if self.col + width > 75 {
                out.extend_from_slice(b"=\n");
                self.col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            self.col += width;
        }
    }
}

/// Both passes over a message in memory (tests, fuzzing, small messages).
pub fn downgrade(msg: &[u8]) -> Result<Vec<u8>, DowngradeError> {
    let mut sink = Vec::new();
    let mut scan = Walker::scan();
    scan.feed(msg, &mut sink);
    let plan = scan.finish(&mut sink)?;
    let mut out = Vec::with_capacity(msg.len() * 11 / 10);
    let mut emit = Walker::emit(plan);
    emit.feed(msg, &mut out);
    emit.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The streaming walker against the recursive downgrade it replaced
    //! (kept here as the oracle), on a corpus of MIME shapes fed in pieces.
    use super::super::body::{quoted_printable, split_entity};
    use super::*;

    /// Re-encodes one MIME entity (header and body) into `out`.
    fn entity(
        e: &[u8],
        top: bool,
        digest: bool,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), DowngradeError> {
        let (head, body) = split_entity(e);
        if has_8bit(head) {
            return Err(DowngradeError::HeaderNot7Bit);
        }
        if !has_8bit(body) {
            out.extend_from_slice(e);
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Err(DowngradeError::CannotEncode("MIME nesting too deep".into()));
        }
        let fields = fields(head);
        let ctype = field(&fields, "content-type");
        let cte = field(&fields, "content-transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let (mime_type, params) = match &ctype {
            Some(v) => parse_content_type(v),
            None if digest => ("message/rfc822".to_string(), Vec::new()),
            None => ("text/plain".to_string(), Vec::new()),
        };
        if cte == "binary" {
            return Err(DowngradeError::CannotEncode(
                "a part is declared binary".into(),
            ));
        }
        if mime_type.starts_with("multipart/") {
            if let Some(boundary) = param(&params, "boundary") {
                write_head(&fields, top, Some("7bit"), ctype.is_none(), out);
                let digest = mime_type == "multipart/digest";
                return multipart(body, &boundary, digest, depth, out);
            }
        }
        if mime_type == "message/rfc822" || mime_type == "message/global" {
            write_head(&fields, top, Some("7bit"), ctype.is_none(), out);
            return entity(body, false, false, depth + 1, out);
        }
        if cte == "base64" || cte == "quoted-printable" {
            return Err(DowngradeError::CannotEncode(format!(
                "8-bit data in a part declared {cte}"
            )));
        }
        write_head(&fields, top, Some("quoted-printable"), ctype.is_none(), out);
        quoted_printable(body, out);
        Ok(())
    }

    /// The parts of a multipart body, each re-encoded.
    fn multipart(
        body: &[u8],
        boundary: &str,
        digest: bool,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), DowngradeError> {
        let delim = format!("--{boundary}");
        let mut part_start: Option<usize> = None;
        let mut pos = 0;
        while pos < body.len() {
            let end = body[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| pos + i + 1)
                .unwrap_or(body.len());
            let line = &body[pos..end];
            let trimmed = trim_end(line);
            let is_delim = trimmed.starts_with(delim.as_bytes()) && {
                let rest = &trimmed[delim.len()..];
                rest.is_empty() || rest == b"--" || rest.iter().all(|b| *b == b' ' || *b == b'\t')
            };
            if is_delim {
                match part_start {
                    Some(s) => entity(&body[s..pos], false, digest, depth + 1, out)?,
                    // The preamble: 8-bit there has no encoding to take.
                    None if has_8bit(&body[..pos]) => {
                        return Err(DowngradeError::CannotEncode(
                            "8-bit data in a multipart preamble".into(),
                        ))
                    }
                    None => out.extend_from_slice(&body[..pos]),
                }
                out.extend_from_slice(line);
                if trimmed.ends_with(b"--") && trimmed.len() == delim.len() + 2 {
                    let epilogue = &body[end..];
                    if has_8bit(epilogue) {
                        return Err(DowngradeError::CannotEncode(
                            "8-bit data in a multipart epilogue".into(),
                        ));
                    }
                    out.extend_from_slice(epilogue);
                    return Ok(());
                }
                part_start = Some(end);
            }
            pos = end;
        }
        // No closing delimiter: the last part runs to the end.
        match part_start {
            Some(s) => entity(&body[s..], false, digest, depth + 1, out),
            None if has_8bit(body) => Err(DowngradeError::CannotEncode(
                "multipart body without its boundary".into(),
            )),
            None => {
                out.extend_from_slice(body);
                Ok(())
            }
        }
    }

    fn oracle(msg: &[u8]) -> Result<Vec<u8>, DowngradeError> {
        let mut out = Vec::new();
        entity(msg, true, false, 0, &mut out)?;
        Ok(out)
    }

    fn streamed(msg: &[u8], chunk: usize) -> Result<Vec<u8>, DowngradeError> {
        let mut sink = Vec::new();
        let mut scan = Walker::scan();
        for piece in msg.chunks(chunk.max(1)) {
            scan.feed(piece, &mut sink);
        }
        let plan = scan.finish(&mut sink)?;
        assert!(sink.is_empty());
        let mut out = Vec::new();
        let mut emit = Walker::emit(plan);
        for piece in msg.chunks(chunk.max(1)) {
            emit.feed(piece, &mut out);
        }
        emit.finish(&mut out)?;
        Ok(out)
    }

    fn corpus() -> Vec<Vec<u8>> {
        let leaves: &[&str] = &[
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\u{fc}\u{df}e \n.dot\n",
            "Content-Type: text/plain\n\nplain ascii\n",
            "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nQUJD\n",
            "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n\u{e9}\n",
            "Content-Transfer-Encoding: binary\n\n\u{e9}\n",
            "\n\u{e9}t\u{e9} no header\r\n",
            "X-Caf\u{e9}: h\n\nbody\n",
            "Content-Type: message/rfc822\n\nSubject: inner\nContent-Type: text/plain\n\n\u{e9}\n",
            "Content-Type: text/plain\n\nlong \u{e9} line aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\t\nend",
            "no blank line, all header",
        ];
        let mut out: Vec<Vec<u8>> = Vec::new();
        for l in leaves {
            out.push(format!("Subject: one\n{l}").into_bytes());
        }
        for (i, a) in leaves.iter().enumerate() {
            for b in leaves.iter().skip(i % 3).step_by(2) {
                out.push(format!(
                    "Subject: multi\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b 1\"\n\npre\n--b 1\n{a}\n--b 1  \n{b}\n--b 1--\nepi\n"
                ).into_bytes());
                out.push(format!(
                    "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n{a}\n--o\n{b}\n--i\nstray\n--o--\n"
                ).into_bytes());
                out.push(format!(
                    "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: x\n\n{a}\n--d\n{b}"
                ).into_bytes());
            }
        }
        out.push(b"Content-Type: multipart/mixed; boundary=x\n\n\xe9 no delimiter\n".to_vec());
        out.push(
            b"Content-Type: multipart/mixed; boundary=x\n\n\xe9 pre\n--x\n\nA\n--x--\n".to_vec(),
        );
        out.push(
            b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\nA\xe9\n--x--\n\xe9 epi\n"
                .to_vec(),
        );
        let mut deep = String::new();
        for i in 0..40 {
            deep.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=l{i}\n\n--l{i}\n"
            ));
        }
        deep.push_str("\n\u{e9}\n");
        out.push(deep.into_bytes());
        out
    }

    #[test]
    fn the_stream_gives_what_the_recursive_downgrade_gave() {
        for msg in corpus() {
            let want = oracle(&msg);
            for chunk in [1, 2, 3, 7, 64, 512, 1 << 20] {
                let got = streamed(&msg, chunk);
                match (&want, &got) {
                    (Ok(w), Ok(g)) => assert_eq!(
                        String::from_utf8_lossy(g),
                        String::from_utf8_lossy(w),
                        "{}",
                        String::from_utf8_lossy(&msg)
                    ),
                    (Err(_), Err(_)) => {}
                    _ => panic!(
                        "{:?} vs {:?} for {}",
                        want.as_ref().map(|_| ()),
                        got.as_ref().map(|_| ()),
                        String::from_utf8_lossy(&msg)
                    ),
                }
            }
        }
    }

    #[test]
    fn lines_longer_than_a_segment_are_encoded_as_one() {
        let mut msg = b"Content-Type: text/plain\n\n".to_vec();
        msg.extend(std::iter::repeat_n(0xe9u8, 3 * MAX_SEGMENT + 5));
        msg.extend_from_slice(b" \nend\n");
        assert_eq!(streamed(&msg, 4096).unwrap(), oracle(&msg).unwrap());
    }
}
