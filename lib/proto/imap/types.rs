//! The typed commands the parser produces.

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// A mailbox name as sent: modified UTF-7 (rev1) or UTF-8 (rev2); the
/// session decodes it. `INBOX` is case-insensitive, also left to the session.
pub type MailboxArg = Vec<u8>;

/// What a command asks, with its typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // Any state (RFC 3501 6.1).
    Capability,
    Noop,
    Logout,
    // Not authenticated (6.2).
    StartTls,
    Authenticate {
        mechanism: String,
        /// SASL-IR initial response, base64 text (`=` for an empty one):
        /// it holds a password, so it is a [`Secret`](crate::proto::sasl::Secret).
        initial: Option<crate::proto::sasl::Secret>,
    },
    Login {
        user: Vec<u8>,
        /// Never printed, wiped when dropped.
        password: crate::proto::sasl::Secret,
    },
    // Authenticated (6.3) and extensions usable there.
    Enable(Vec<String>),
    Id(Option<Vec<(String, Option<String>)>>),
    Select {
        mailbox: MailboxArg,
        examine: bool,
        condstore: bool,
        /// `(QRESYNC (...))` (RFC 7162 3.2.5).
        qresync: Option<Qresync>,
    },
    Create(MailboxArg),
    Delete(MailboxArg),
    Rename {
        from: MailboxArg,
        to: MailboxArg,
    },
    Subscribe(MailboxArg),
    Unsubscribe(MailboxArg),
    List(ListArgs),
    Namespace,
    Status {
        mailbox: MailboxArg,
        items: Vec<StatusItem>,
    },
    /// APPEND with one message, or several (MULTIAPPEND, RFC 3502).
    Append {
        mailbox: MailboxArg,
        messages: Vec<AppendMessage>,
    },
    /// GENURLAUTH (RFC 4467): (URL rump, mechanism) pairs.
    GenUrlAuth(Vec<(Vec<u8>, String)>),
    /// RESETKEY (RFC 4467): one mailbox's keys, or every mailbox's.
    ResetKey {
        mailbox: Option<MailboxArg>,
        mechanisms: Vec<String>,
    },
    /// URLFETCH (RFC 4467, extended by RFC 5524).
    UrlFetch(Vec<UrlFetchArg>),
    Idle,
    GetQuota(Vec<u8>),
    GetQuotaRoot(MailboxArg),
    SetQuota(Vec<u8>),
    /// RFC 5464 4.2; entry names lower-cased.
    GetMetadata {
        mailbox: MailboxArg,
        entries: Vec<String>,
        max_size: Option<u32>,
        depth: MetadataDepth,
    },
    /// RFC 5464 4.3: entries to set (Some) or remove (NIL).
    SetMetadata {
        mailbox: MailboxArg,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// RFC 5465: `NOTIFY SET ...`, or `NOTIFY NONE` (None).
    Notify(Option<NotifySet>),
    // Selected (6.4).
    Check,
    Close,
    Unselect,
    Expunge {
        /// UID EXPUNGE (RFC 4315).
        uids: Option<SeqSet>,
    },
    Search {
        uid: bool,
        /// ESEARCH RETURN options (RFC 4731); None for plain SEARCH.
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
    },
    /// SORT and UID SORT (RFC 5256), with ESORT return options (RFC 5267).
    Sort {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: SearchKey,
    },
    /// THREAD and UID THREAD (RFC 5256).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        /// The VANISHED modifier of UID FETCH (RFC 7162 3.2.6).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<Flag>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: MailboxArg,
    },
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: MailboxArg,
    },
    /// CANCELUPDATE (RFC 5267 4.3.5): the tags of searches whose updates stop.
    CancelUpdate(Vec<String>),
    /// A verb we do not know; the reply is BAD.
    Unknown(String),
}

impl CommandBody {
    /// The command's name, for logs and for state checks.
    pub fn name(&self) -> &str {
        use CommandBody::*;
        match self {
            Capability => "CAPABILITY",
            Noop => "NOOP",
            Logout => "LOGOUT",
            StartTls => "STARTTLS",
            Authenticate { .. } => "AUTHENTICATE",
            Login { .. } => "LOGIN",
            Enable(_) => "ENABLE",
            Id(_) => "ID",
            Select { examine: false, .. } => "SELECT",
            Select { examine: true, .. } => "EXAMINE",
            Create(_) => "CREATE",
            Delete(_) => "DELETE",
            Rename { .. } => "RENAME",
            Subscribe(_) => "SUBSCRIBE",
            Unsubscribe(_) => "UNSUBSCRIBE",
            List(a) if a.lsub => "LSUB",
            List(_) => "LIST",
            Namespace => "NAMESPACE",
            Status { .. } => "STATUS",
            Append { .. } => "APPEND",
            GenUrlAuth(_) => "GENURLAUTH",
            ResetKey { .. } => "RESETKEY",
            UrlFetch(_) => "URLFETCH",
            Idle => "IDLE",
            GetQuota(_) => "GETQUOTA",
            GetQuotaRoot(_) => "GETQUOTAROOT",
            SetQuota(_) => "SETQUOTA",
            GetMetadata { .. } => "GETMETADATA",
            SetMetadata { .. } => "SETMETADATA",
            Notify(_) => "NOTIFY",
            Check => "CHECK",
            Close => "CLOSE",
            Unselect => "UNSELECT",
            Expunge { .. } => "EXPUNGE",
            Search { .. } => "SEARCH",
            Sort { .. } => "SORT",
            Thread { .. } => "THREAD",
            Fetch { .. } => "FETCH",
            Store { .. } => "STORE",
            Copy { .. } => "COPY",
            Move { .. } => "MOVE",
            CancelUpdate(_) => "CANCELUPDATE",
            Unknown(v) => v,
        }
    }
}

/// The QRESYNC parameter of SELECT and EXAMINE (RFC 7162 3.2.5): what the
/// client knew when it last had the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// The UIDs the client knows (all of them when absent).
    pub known_uids: Option<SeqSet>,
    /// Message numbers and the UIDs the client has at them.
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

/// GETMETADATA's DEPTH option (RFC 5464 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDepth {
    Zero,
    One,
    Infinity,
}

/// `NOTIFY SET [STATUS] groups` (RFC 5465 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// STATUS: send the watched mailboxes' STATUS at once.
    pub status: bool,
    pub groups: Vec<NotifyGroup>,
}

/// One event group: which mailboxes, which events (empty: NONE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    pub events: Vec<NotifyEvent>,
}

/// RFC 5465 6: the mailboxes an event group is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<MailboxArg>),
    Mailboxes(Vec<MailboxArg>),
}

/// RFC 5465 5: the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the FETCH items to send for each new message.
    MessageNew(Vec<FetchAtt>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadata,
    ServerMetadata,
    /// An event we do not know (NO [BADEVENT]).
    Other(String),
}

/// One message of an APPEND (RFC 3501 6.3.11, RFC 3502, RFC 4469).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date: Option<DateTime>,
    pub content: AppendContent,
}

/// A message as sent, or put together from parts (CATENATE, RFC 4469).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendContent {
    Literal(AppendData),
    Catenate(Vec<CatenatePart>),
}

/// A part of a CATENATE: literal text, or an IMAP URL (RFC 5092) to a
/// message or a section of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatenatePart {
    Text(AppendData),
    Url(Vec<u8>),
}

/// The bytes of an APPEND literal, and where they start in the command:
/// a literal too large to keep in memory is written to a staging file by
/// the server and left empty in the command, and the offset tells which
/// staged file belongs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendData {
    pub bytes: Vec<u8>,
    pub at: usize,
}

/// One URL of URLFETCH, with the RFC 5524 parameters when it was sent as
/// a parenthesised list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlFetchArg {
    pub url: Vec<u8>,
    /// Sent as `(url ...)`: the answer is the extended form.
    pub extended: bool,
    pub body: bool,
    pub binary: bool,
    pub body_part_structure: bool,
}

/// LIST / LSUB arguments, with LIST-EXTENDED (RFC 5258) options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListArgs {
    pub lsub: bool,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    /// Selection options.
    pub subscribed: bool,
    pub recursive_match: bool,
    pub special_use_only: bool,
    /// Return options.
    pub ret_subscribed: bool,
    pub ret_children: bool,
    pub ret_special_use: bool,
    /// LIST-STATUS (RFC 5819).
    pub ret_status: Option<Vec<StatusItem>>,
    /// Whether any extended syntax was used (replies then follow RFC 5258).
    pub extended: bool,
}

/// STATUS data items (RFC 3501 6.3.10, RFC 9051, RFC 7162, RFC 9208).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
}

/// A message flag or keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Answered,
    Flagged,
    Deleted,
    Seen,
    Draft,
    Recent,
    /// A keyword (an atom without backslash).
    Keyword(String),
    /// `\Something` we do not know.
    Extension(String),
}

impl Flag {
    /// The flag as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Seen => "\\Seen",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::Keyword(k) => k,
            Flag::Extension(e) => e,
        }
    }
}

/// One end of a sequence range: a number or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNo {
    Value(u32),
    Star,
}

impl SeqNo {
    /// The number, with `*` meaning `largest`.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNo::Value(v) => v,
            SeqNo::Star => largest,
        }
    }
}

/// A sequence set: message numbers or UIDs, ranges in either order.
/// The parser makes an empty one only for `$`, the saved search result
/// (RFC 5182), which the session replaces before a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(SeqNo, SeqNo)>);

impl SeqSet {
    /// `$`: the result the last `SEARCH RETURN (SAVE)` kept (RFC 5182).
    pub fn saved() -> SeqSet {
        SeqSet(Vec::new())
    }

    /// Whether this is `$`.
    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges as ordered `(low, high)` pairs, `*` being `largest`.
    pub fn ranges(&self, largest: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().map(move |(a, b)| {
            let (a, b) = (a.resolve(largest), b.resolve(largest));
            (a.min(b), a.max(b))
        })
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.ranges(largest).any(|(lo, hi)| lo <= n && n <= hi)
    }
}

/// STORE mode: FLAGS, +FLAGS, -FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// A calendar date (SEARCH BEFORE/ON/SINCE...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Days since 1970-01-01 (proleptic Gregorian).
    pub fn days(&self) -> i64 {
        days_from_civil(self.year as i64, self.month, self.day)
    }
}

/// A date and time with its zone (APPEND, INTERNALDATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub date: Date,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Offset east of UTC, in minutes.
    pub zone_minutes: i32,
}

impl DateTime {
    /// Seconds since the epoch, UTC.
    pub fn timestamp(&self) -> i64 {
        self.date.days() * 86_400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64
            - self.zone_minutes as i64 * 60
    }
}

/// Days from 1970-01-01 to y-m-d (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// FETCH data items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    BodyStructure,
    /// `BODY` without a section: the non-extensible body structure.
    Body,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Section {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
    /// BINARY[part] (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize(Vec<u32>),
    ModSeq,
}

/// A body section: a part path and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

/// The text part of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// ESEARCH return options (RFC 4731, RFC 5267 for SORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    /// UPDATE (RFC 5267 4.3): keep the result and report its changes.
    Update,
    /// CONTEXT (RFC 5267 4.2): a hint that the search will be used again.
    Context,
    /// Keep the result for `$` (SEARCHRES, RFC 5182).
    Save,
    /// A window of the result by position (RFC 9394): `first:last`, both
    /// positive (from the start, 1-based) or both negative (from the end,
    /// -1 the last), `first` nearer the start.
    Partial(i64, i64),
}

/// One SORT criterion (RFC 5256 3, RFC 5957).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub by: SortBy,
}

/// What a SORT criterion compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// THREAD algorithms (RFC 5256 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    Header(String, String),
    Keyword(String),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SeqSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    SeqSet(SeqSet),
    And(Vec<SearchKey>),
    ModSeq(u64),
}
